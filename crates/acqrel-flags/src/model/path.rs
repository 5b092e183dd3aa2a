//! JSON paths for error messages, built on the stack as the parser descends
//! and rendered only when something goes wrong.

use std::fmt;

/// One step down from a JSON value.
#[derive(Clone, Copy)]
enum Step<'a> {
    /// The document itself: `$`.
    Root,
    /// A member of an object.
    Key(&'a str),
    /// An element of an array.
    Index(usize),
}

/// The location of a value in the document, as a chain of steps from the
/// root (each link lives in a stack frame of the walk that made it).
///
/// Rendered in JSONPath's normalized style: `$.flags["my-flag"].variants`,
/// with the dotted form for keys that are identifiers (an ASCII letter or
/// `_`, then ASCII letters, digits or `_`) and a bracketed JSON string for
/// every other key.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step<'a>,
}

impl Path<'static> {
    /// The document root, `$`.
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        step: Step::Root,
    };
}

impl<'a> Path<'a> {
    /// The member `key` of the object at `self`.
    pub(crate) fn key<'b>(&'b self, key: &'b str) -> Path<'b>
    where
        'a: 'b,
    {
        Path {
            parent: Some(self),
            step: Step::Key(key),
        }
    }

    /// The element `index` of the array at `self`.
    pub(crate) fn index<'b>(&'b self, index: usize) -> Path<'b>
    where
        'a: 'b,
    {
        Path {
            parent: Some(self),
            step: Step::Index(index),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Collect the chain (its length is bounded by the parser's nesting
        // limit) and print it root first, without recursion.
        let mut steps = Vec::new();
        let mut link = Some(self);
        while let Some(path) = link {
            steps.push(path.step);
            link = path.parent;
        }
        for step in steps.iter().rev() {
            match *step {
                Step::Root => f.write_str("$")?,
                Step::Key(key) if is_identifier(key) => write!(f, ".{key}")?,
                // A JSON string literal: the quotes and escapes of the key.
                Step::Key(key) => write!(f, "[{}]", serde_json::Value::from(key))?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Whether `key` can be written after a dot: an ASCII letter or `_`, then
/// ASCII letters, digits or `_`.
fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::Path;

    #[test]
    fn renders_identifiers_dotted_and_other_keys_bracketed() {
        let flags = Path::ROOT.key("flags");
        let flag = flags.key("my-flag");
        let variants = flag.key("variants");
        assert_eq!(variants.to_string(), r#"$.flags["my-flag"].variants"#);

        let evaluators = Path::ROOT.key("$evaluators");
        let rule = evaluators.key("is_beta");
        let and = rule.key("and");
        let second = and.index(1);
        assert_eq!(second.to_string(), r#"$["$evaluators"].is_beta.and[1]"#);

        let odd = Path::ROOT.key("say \"hi\"\n");
        assert_eq!(odd.to_string(), r#"$["say \"hi\"\n"]"#);
        let empty = Path::ROOT.key("");
        assert_eq!(empty.to_string(), r#"$[""]"#);
        let digit = Path::ROOT.key("2fa");
        assert_eq!(digit.to_string(), r#"$["2fa"]"#);
        assert_eq!(Path::ROOT.to_string(), "$");
    }
}
