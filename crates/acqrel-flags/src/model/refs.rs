//! `$ref` resolution: shared rules from `$evaluators` pulled into targeting.
//!
//! flagd resolves `$ref` by rewriting the file's *text* before parsing it:
//! `"$ref": "name"` is replaced by the evaluator's JSON with its outer
//! braces removed, so the evaluator's members are spliced into the object
//! that held the `$ref`. Here the resolution is structural, on the parsed
//! document: an object whose only member is `"$ref"` with a string value is
//! replaced by the named evaluator's rule. For the form flagd documents,
//! `{"$ref": "name"}` as a whole object with an object evaluator, the two
//! give the same rule. Being structural, any whitespace is accepted
//! (`"$ref" : "x"`, line breaks; flagd's pattern does not match a space
//! before the colon), an evaluator may be any JSON value (flagd's brace
//! stripping garbles non-objects), and an object that has `"$ref"` next to
//! other members, or a `"$ref"` that is not a string, is reported instead of
//! producing an object JsonLogic would treat as a literal.
//!
//! Evaluators may reference other evaluators (flagd documents this as
//! unsupported: its result depends on map iteration order). Each evaluator
//! is resolved once, depth first with an explicit stack (never by
//! recursion across evaluators), and the result is reused by every
//! reference. A reference back to an evaluator still being resolved is a
//! cycle.
//!
//! Bounds, so that no file can exhaust the stack or memory:
//! - a resolved rule nests at most [`MAX_DEPTH`] arrays and objects, the
//!   parser's own limit, so later recursive walks (compiling, cloning,
//!   dropping) stay as shallow as on a parsed document;
//! - the values copied in by `$ref` count against a budget for the whole
//!   file of 2²⁰ JSON values plus 4 per byte of the file (exponential
//!   blow-up, evaluators doubling one another, stops there).
//!
//! Every failure makes the flag's targeting invalid (its evaluation reports
//! `PARSE_ERROR`) with a reason and the path of the offending `$ref`; the
//! rest of the file still loads. Evaluators no flag references are not
//! examined. `$ref` is resolved in targeting and evaluators only, not in
//! variant values or metadata.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use super::describe;
use super::path::Path;

/// The deepest nesting of arrays and objects a resolved rule may have.
pub(crate) const MAX_DEPTH: usize = 128;

/// Values that `$ref` may copy for a file of `len` bytes.
pub(crate) fn expansion_budget(len: usize) -> usize {
    (1 << 20) + len.saturating_mul(4)
}

/// Why a rule cannot be resolved, and where.
#[derive(Debug, Clone)]
pub(crate) struct RefError {
    pub(crate) path: String,
    pub(crate) reason: String,
}

impl RefError {
    fn new(path: &Path<'_>, reason: String) -> Self {
        RefError {
            path: path.to_string(),
            reason,
        }
    }
}

/// A rule with every `$ref` replaced.
#[derive(Debug)]
struct Resolved {
    value: Json,
    /// Nesting of arrays and objects: 0 for a scalar.
    height: usize,
    /// JSON values in `value`, itself included.
    nodes: usize,
}

/// Where an evaluator's resolution stands.
#[derive(Debug)]
enum State {
    /// On the resolution stack: a `$ref` to it now closes a cycle.
    InProgress,
    Done(Result<Resolved, RefError>),
}

/// An evaluator on the resolution stack, with the evaluators it names.
struct Frame<'e> {
    name: &'e str,
    deps: Vec<&'e str>,
    next: usize,
}

/// Resolves `$ref` against one file's `$evaluators`, caching each
/// evaluator's resolution.
#[derive(Debug)]
pub(crate) struct Resolver<'e> {
    evaluators: &'e Map<String, Json>,
    states: HashMap<&'e str, State>,
    /// Names of the evaluators on the resolution stack, bottom first.
    stack: Vec<&'e str>,
    /// Values copied by `$ref` so far, and the most allowed.
    spent: usize,
    budget: usize,
}

impl<'e> Resolver<'e> {
    pub(crate) fn new(evaluators: &'e Map<String, Json>, budget: usize) -> Self {
        Resolver {
            evaluators,
            states: HashMap::new(),
            stack: Vec::new(),
            spent: 0,
            budget,
        }
    }

    /// `rule` (found at `path`) with every `$ref` replaced.
    pub(crate) fn resolve(&mut self, rule: &Json, path: &Path<'_>) -> Result<Json, RefError> {
        let mut deps = Vec::new();
        self.collect(rule, &mut deps);
        for dep in deps {
            self.ensure(dep);
        }
        self.build(rule, path, 0).map(|resolved| resolved.value)
    }

    /// Appends the evaluators that `value` references (by well-formed
    /// `$ref`s naming an existing entry) and that are not resolved yet.
    /// Recursion is bounded by the parser's nesting limit.
    fn collect(&self, value: &Json, out: &mut Vec<&'e str>) {
        match value {
            Json::Object(map) => match map.get("$ref") {
                Some(Json::String(name)) if map.len() == 1 => {
                    let evaluators: &'e Map<String, Json> = self.evaluators;
                    if let Some((key, _)) = evaluators.get_key_value(name.as_str())
                        && !self.states.contains_key(key.as_str())
                    {
                        out.push(key);
                    }
                }
                // A malformed `$ref` is reported when the rule is built.
                Some(_) => {}
                None => map.values().for_each(|member| self.collect(member, out)),
            },
            Json::Array(items) => items.iter().for_each(|item| self.collect(item, out)),
            _ => {}
        }
    }

    /// Resolves the evaluator `root` and every evaluator it needs, depth
    /// first on an explicit stack, caching each result.
    fn ensure(&mut self, root: &'e str) {
        if self.states.contains_key(root) {
            return;
        }
        let mut frames = vec![self.open(root)];
        while let Some(frame) = frames.last_mut() {
            if let Some(&dep) = frame.deps.get(frame.next) {
                frame.next += 1;
                // Resolved, or on the stack (a cycle, which `build` reports).
                if !self.states.contains_key(dep) {
                    let opened = self.open(dep);
                    frames.push(opened);
                }
                continue;
            }
            // Everything it names is settled: build it.
            let name = frame.name;
            frames.pop();
            let evaluators: &'e Map<String, Json> = self.evaluators;
            let result = match evaluators.get(name) {
                Some(body) => {
                    let root = Path::ROOT.key("$evaluators");
                    self.build(body, &root.key(name), 0)
                }
                // `open` is only ever given names found in `evaluators`.
                None => Err(RefError::new(
                    &Path::ROOT.key("$evaluators"),
                    format!("no evaluator named {}", quoted(name)),
                )),
            };
            self.stack.pop();
            self.states.insert(name, State::Done(result));
        }
    }

    /// Puts `name` on the resolution stack and lists what it references.
    fn open(&mut self, name: &'e str) -> Frame<'e> {
        self.states.insert(name, State::InProgress);
        self.stack.push(name);
        let mut deps = Vec::new();
        let evaluators: &'e Map<String, Json> = self.evaluators;
        if let Some(body) = evaluators.get(name) {
            self.collect(body, &mut deps);
        }
        Frame {
            name,
            deps,
            next: 0,
        }
    }

    /// A copy of `value` (at `path`, `depth` arrays and objects below the
    /// rule's root) with every `$ref` replaced by its evaluator's resolved
    /// rule. Every evaluator it names must be settled already.
    fn build(&mut self, value: &Json, path: &Path<'_>, depth: usize) -> Result<Resolved, RefError> {
        match value {
            Json::Object(map) => {
                if let Some(reference) = map.get("$ref") {
                    return self.splice(map, reference, path, depth);
                }
                let mut out = Map::new();
                let (mut height, mut nodes) = (0, 1);
                for (key, member) in map {
                    let child = self.build(member, &path.key(key), depth + 1)?;
                    height = height.max(child.height);
                    nodes += child.nodes;
                    out.insert(key.clone(), child.value);
                }
                Ok(Resolved {
                    value: Json::Object(out),
                    height: height + 1,
                    nodes,
                })
            }
            Json::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                let (mut height, mut nodes) = (0, 1);
                for (index, item) in items.iter().enumerate() {
                    let child = self.build(item, &path.index(index), depth + 1)?;
                    height = height.max(child.height);
                    nodes += child.nodes;
                    out.push(child.value);
                }
                Ok(Resolved {
                    value: Json::Array(out),
                    height: height + 1,
                    nodes,
                })
            }
            scalar => Ok(Resolved {
                value: scalar.clone(),
                height: 0,
                nodes: 1,
            }),
        }
    }

    /// The resolved rule for the `$ref` object `map` at `path`.
    fn splice(
        &mut self,
        map: &Map<String, Json>,
        reference: &Json,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<Resolved, RefError> {
        let Json::String(name) = reference else {
            return Err(RefError::new(
                &path.key("$ref"),
                format!(
                    "$ref must be a string naming an evaluator, found {}",
                    describe(reference)
                ),
            ));
        };
        if map.len() != 1 {
            return Err(RefError::new(
                path,
                format!(
                    "an object with $ref must have no other member, this one has {}",
                    map.len()
                ),
            ));
        }
        let evaluators: &'e Map<String, Json> = self.evaluators;
        let Some((key, _)) = evaluators.get_key_value(name.as_str()) else {
            return Err(RefError::new(
                path,
                format!(
                    "unknown $ref {}: $evaluators has no such entry",
                    quoted(name)
                ),
            ));
        };
        let resolved = match self.states.get(key.as_str()) {
            Some(State::Done(Ok(resolved))) => resolved,
            Some(State::Done(Err(error))) => return Err(error.clone()),
            Some(State::InProgress) => return Err(RefError::new(path, self.cycle(key))),
            // `resolve` and `ensure` settle every evaluator a rule names
            // before building it; kept as an error rather than a panic.
            None => {
                return Err(RefError::new(
                    path,
                    format!("$ref {} was not resolved", quoted(name)),
                ));
            }
        };
        if depth + resolved.height > MAX_DEPTH {
            return Err(RefError::new(
                path,
                format!(
                    "the rule nests deeper than {MAX_DEPTH} arrays and objects once $ref {} is expanded",
                    quoted(name)
                ),
            ));
        }
        let spent = self.spent.saturating_add(resolved.nodes);
        if spent > self.budget {
            return Err(RefError::new(
                path,
                format!(
                    "expanding $ref {} goes past this file's budget of {} copied JSON values",
                    quoted(name),
                    self.budget
                ),
            ));
        }
        let copy = Resolved {
            value: resolved.value.clone(),
            height: resolved.height,
            nodes: resolved.nodes,
        };
        self.spent = spent;
        Ok(copy)
    }

    /// The cycle closed by a `$ref` to `name` from the evaluator on top of
    /// the stack: `a -> b -> a`.
    fn cycle(&self, name: &str) -> String {
        let start = self
            .stack
            .iter()
            .position(|&open| open == name)
            .unwrap_or(0);
        let mut chain: Vec<&str> = self.stack[start..].to_vec();
        chain.push(name);
        format!("$ref cycle: {}", chain.join(" -> "))
    }
}

/// `name` as a JSON string literal.
fn quoted(name: &str) -> String {
    Json::from(name).to_string()
}
