//! `benches/targets.txt`: the ratios ours must stay under, one per line.
//!
//! ```text
//! # group_id | ours function_id | anchor function_id | max ratio
//! snapshot/read_no_writer | acqrel::Snapshot::load | arc_swap::ArcSwap::load | 1.10
//! ```
//!
//! Fields are separated by `|` and trimmed. Lines whose first non-blank
//! character is `#`, and blank lines, are ignored. For a parameterised
//! benchmark the group is written `group_id/value`.

use std::fmt;

/// One line of `targets.txt`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    /// Criterion group (`group_id`, or `group_id/value` when parameterised).
    pub(crate) group: String,
    /// The `function_id` of our implementation (starts with `acqrel`).
    pub(crate) ours: String,
    /// The `function_id` of the anchor it is compared with: usually not
    /// ours, or ours in another configuration (an `acqrel` id other than
    /// [`ours`](Self::ours)).
    pub(crate) anchor: String,
    /// The largest acceptable `ours / anchor` ratio of mean times.
    pub(crate) max_ratio: f64,
}

/// A malformed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetsError {
    /// 1-based line number.
    pub(crate) line: usize,
    /// What is wrong with it.
    pub(crate) msg: String,
}

impl Target {
    /// A target for `group`: `ours / anchor` must stay under `max_ratio`.
    pub(crate) fn new(group: &str, ours: &str, anchor: &str, max_ratio: f64) -> Target {
        Target {
            group: group.to_owned(),
            ours: ours.to_owned(),
            anchor: anchor.to_owned(),
            max_ratio,
        }
    }
}

impl fmt::Display for TargetsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for TargetsError {}

/// Parses the whole file.
///
/// # Errors
///
/// On the first malformed line: not four fields, an empty field, ours not
/// starting with `acqrel`, the anchor the same as ours, a ratio that is not
/// a positive finite number, or a repeated (group, ours, anchor).
pub(crate) fn parse(text: &str) -> Result<Vec<Target>, TargetsError> {
    let mut targets: Vec<(usize, Target)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let target = parse_line(trimmed).map_err(|msg| TargetsError { line: line_no, msg })?;
        let same = |t: &Target| {
            t.group == target.group && t.ours == target.ours && t.anchor == target.anchor
        };
        if let Some((first, _)) = targets.iter().find(|(_, t)| same(t)) {
            return Err(TargetsError {
                line: line_no,
                msg: format!("repeats the target on line {first}"),
            });
        }
        targets.push((line_no, target));
    }
    Ok(targets.into_iter().map(|(_, t)| t).collect())
}

/// Parses one non-comment line.
fn parse_line(line: &str) -> Result<Target, String> {
    let fields: Vec<&str> = line.split('|').map(str::trim).collect();
    let [group, ours, anchor, max_ratio] = fields[..] else {
        return Err(format!(
            "expected 4 fields `group | ours | anchor | max ratio`, found {}",
            fields.len()
        ));
    };
    for (name, value) in [("group", group), ("ours", ours), ("anchor", anchor)] {
        if value.is_empty() {
            return Err(format!("the {name} field is empty"));
        }
    }
    if !ours.starts_with("acqrel") {
        return Err(format!("ours (`{ours}`) must start with `acqrel`"));
    }
    // The anchor may be ours in another configuration (the Redis limiter
    // without its deny cache), never the same function.
    if anchor == ours {
        return Err(format!("ours and the anchor are both `{ours}`"));
    }
    let max_ratio = match max_ratio.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => r,
        _ => {
            return Err(format!("max ratio `{max_ratio}` is not a positive number"));
        }
    };
    Ok(Target::new(group, ours, anchor, max_ratio))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_comments_and_blanks() {
        let text = "\
# group | ours | anchor | max ratio

snapshot/read_no_writer | acqrel::Snapshot::load | arc_swap::ArcSwap::load | 1.10
   # indented comment
\tsnapshot/read_no_writer|acqrel::Snapshot::load|std::RwLock<Arc<T>>::read|0.5\t
latch/wait/4 | acqrel::Latch::wait | std::sync::Barrier::wait | 2
r/over | acqrel::R::check (cache) | acqrel::R::check (no cache) | 0.05
";
        assert_eq!(
            parse(text).unwrap(),
            vec![
                Target::new(
                    "snapshot/read_no_writer",
                    "acqrel::Snapshot::load",
                    "arc_swap::ArcSwap::load",
                    1.10
                ),
                Target::new(
                    "snapshot/read_no_writer",
                    "acqrel::Snapshot::load",
                    "std::RwLock<Arc<T>>::read",
                    0.5
                ),
                Target::new(
                    "latch/wait/4",
                    "acqrel::Latch::wait",
                    "std::sync::Barrier::wait",
                    2.0
                ),
                Target::new(
                    "r/over",
                    "acqrel::R::check (cache)",
                    "acqrel::R::check (no cache)",
                    0.05
                ),
            ]
        );
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("# only\n\n  \n").unwrap(), vec![]);
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            err("# c\n\ng | acqrel::a | b\n"),
            "line 3: expected 4 fields `group | ours | anchor | max ratio`, found 3"
        );
        assert_eq!(
            err("g | acqrel::a | b | 1 | extra"),
            "line 1: expected 4 fields `group | ours | anchor | max ratio`, found 5"
        );
        assert_eq!(
            err(" | acqrel::a | b | 1"),
            "line 1: the group field is empty"
        );
        assert_eq!(err("g | | b | 1"), "line 1: the ours field is empty");
        assert_eq!(
            err("g | acqrel::a |  | 1"),
            "line 1: the anchor field is empty"
        );
        assert_eq!(
            err("g | arc_swap::load | acqrel::load | 1"),
            "line 1: ours (`arc_swap::load`) must start with `acqrel`"
        );
        assert_eq!(
            err("g | acqrel::a | acqrel::a | 1"),
            "line 1: ours and the anchor are both `acqrel::a`"
        );
        for bad in ["", "fast", "0", "-1", "inf", "NaN", "1,1", "1.1x"] {
            assert_eq!(
                err(&format!("g | acqrel::a | b | {bad}")),
                format!("line 1: max ratio `{bad}` is not a positive number")
            );
        }
        assert_eq!(
            err("g | acqrel::a | b | 1\nh | acqrel::a | b | 1\ng|acqrel::a|b|2\n"),
            "line 3: repeats the target on line 1"
        );
    }
}
