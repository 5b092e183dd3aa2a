//! The markdown report: one table per criterion group pairing ours with each
//! anchor, then the targets table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::targets::Target;

/// One benchmark measured in this run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measured {
    /// Criterion `group_id`.
    pub(crate) group: String,
    /// Criterion `function_id` (the `group_id` when criterion has none).
    pub(crate) function: String,
    /// Criterion `value_str`: the parameter of a parameterised benchmark.
    pub(crate) value: Option<String>,
    /// Mean time per iteration, in nanoseconds.
    pub(crate) mean_ns: f64,
}

impl Measured {
    /// Whether this is our implementation rather than an anchor.
    fn is_ours(&self) -> bool {
        self.function.starts_with("acqrel")
    }

    /// The function, with the parameter when there is one.
    fn label(&self) -> String {
        match &self.value {
            Some(value) => format!("{}/{value}", self.function),
            None => self.function.clone(),
        }
    }

    /// Whether this belongs to the group a target names (`group_id`, or
    /// `group_id/value` for a parameterised benchmark).
    fn in_target_group(&self, group: &str) -> bool {
        match &self.value {
            None => self.group == group,
            Some(value) => group
                .strip_prefix(self.group.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| rest == value),
        }
    }
}

/// What the targets table found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TargetCounts {
    /// Targets whose ratio was at most the maximum.
    pub(crate) met: usize,
    /// Targets whose ratio was above the maximum.
    pub(crate) missed: usize,
    /// Targets with ours or the anchor not measured in this run.
    pub(crate) not_measured: usize,
}

/// Placeholder for an empty cell.
const NONE: &str = "—";

/// Renders the per-group tables.
pub(crate) fn render_groups(results: &[Measured]) -> String {
    let mut groups: BTreeMap<&str, Vec<&Measured>> = BTreeMap::new();
    for m in results {
        groups.entry(&m.group).or_default().push(m);
    }
    let mut out = String::new();
    for (group, members) in groups {
        let _ = writeln!(out, "### {}\n", code(group));
        out.push_str("| operation | time | anchor | anchor time | ours/anchor |\n");
        out.push_str("|---|--:|---|--:|--:|\n");
        // Pair ours and anchors measured with the same parameter.
        let mut by_value: BTreeMap<Option<&str>, (Vec<&Measured>, Vec<&Measured>)> =
            BTreeMap::new();
        for m in members {
            let (ours, anchors) = by_value.entry(m.value.as_deref()).or_default();
            if m.is_ours() { ours } else { anchors }.push(m);
        }
        for (ours, mut anchors) in by_value.into_values() {
            anchors.sort_by(|a, b| a.function.cmp(&b.function));
            let mut ours = ours;
            ours.sort_by(|a, b| a.function.cmp(&b.function));
            for o in &ours {
                if anchors.is_empty() {
                    row(&mut out, Some(o), None);
                }
                for a in &anchors {
                    row(&mut out, Some(o), Some(a));
                }
            }
            if ours.is_empty() {
                for a in &anchors {
                    row(&mut out, None, Some(a));
                }
            }
        }
        out.push('\n');
    }
    out
}

/// Writes one table row; either side may be missing.
fn row(out: &mut String, ours: Option<&Measured>, anchor: Option<&Measured>) {
    let cells = |m: Option<&Measured>| match m {
        Some(m) => (code(&m.label()), fmt_time(m.mean_ns)),
        None => (NONE.to_owned(), NONE.to_owned()),
    };
    let (ours_name, ours_time) = cells(ours);
    let (anchor_name, anchor_time) = cells(anchor);
    let ratio = match (ours, anchor) {
        (Some(o), Some(a)) => fmt_ratio(o.mean_ns / a.mean_ns),
        _ => NONE.to_owned(),
    };
    let _ = writeln!(
        out,
        "| {ours_name} | {ours_time} | {anchor_name} | {anchor_time} | {ratio} |"
    );
}

/// Renders the targets table and counts the outcomes.
pub(crate) fn render_targets(results: &[Measured], targets: &[Target]) -> (String, TargetCounts) {
    let mut counts = TargetCounts::default();
    let mut out = String::from("## Targets\n\n");
    if targets.is_empty() {
        out.push_str("`benches/targets.txt` lists no targets.\n");
        return (out, counts);
    }
    out.push_str("| target | ours/anchor | max | status |\n");
    out.push_str("|---|--:|--:|---|\n");
    for t in targets {
        let find = |function: &str| {
            results
                .iter()
                .find(|m| m.function == function && m.in_target_group(&t.group))
        };
        let ratio = match (find(&t.ours), find(&t.anchor)) {
            (Some(o), Some(a)) => Some(o.mean_ns / a.mean_ns).filter(|r| r.is_finite()),
            _ => None,
        };
        let status = match ratio {
            Some(r) if r <= t.max_ratio => {
                counts.met += 1;
                "met"
            }
            Some(_) => {
                counts.missed += 1;
                "**MISSED**"
            }
            None => {
                counts.not_measured += 1;
                "not measured"
            }
        };
        let _ = writeln!(
            out,
            "| {}: {} vs {} | {} | {} | {status} |",
            code(&t.group),
            code(&t.ours),
            code(&t.anchor),
            ratio.map_or_else(|| NONE.to_owned(), fmt_ratio),
            fmt_ratio(t.max_ratio),
        );
    }
    let _ = writeln!(
        out,
        "\ntargets: {} met, {} MISSED, {} not measured",
        counts.met, counts.missed, counts.not_measured
    );
    (out, counts)
}

/// Wraps `s` in a code span for a table cell (`|` escaped, so `<T>` and
/// `|` survive markdown).
fn code(s: &str) -> String {
    let s = s.replace('|', "\\|");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// Formats a time in nanoseconds with three significant digits, in ps, ns,
/// µs, ms or s.
pub(crate) fn fmt_time(ns: f64) -> String {
    const UNITS: [(&str, f64); 5] = [
        ("ps", 1e-3),
        ("ns", 1.0),
        ("µs", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
    ];
    if !ns.is_finite() || ns < 0.0 {
        return "n/a".to_owned();
    }
    if ns == 0.0 {
        return "0 ns".to_owned();
    }
    for (unit, scale) in UNITS {
        let scaled = ns / scale;
        if let Some(digits) = three_significant(scaled) {
            return format!("{digits} {unit}");
        }
    }
    format!("{:.0} s", ns / 1e9)
}

/// `v` with three significant digits, or `None` if it rounds to 1000 or
/// more (time for the next unit).
fn three_significant(v: f64) -> Option<String> {
    // Trying the decimals from most to fewest keeps a value that rounds up
    // into the next decade (9.996 → "10.0") at three digits.
    for decimals in [2, 1, 0] {
        let s = format!("{v:.decimals$}");
        let integer_digits = s.find('.').unwrap_or(s.len());
        if integer_digits <= 3 - decimals {
            return Some(s);
        }
    }
    None
}

/// Formats a ratio with two decimals: `1.07×`.
pub(crate) fn fmt_ratio(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{ratio:.2}×")
    } else {
        "n/a".to_owned()
    }
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn fmt_utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift to an era calendar starting on 0000-03-01, so the leap day is
    // the last day of the year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(group: &str, function: &str, value: Option<&str>, mean_ns: f64) -> Measured {
        Measured {
            group: group.to_owned(),
            function: function.to_owned(),
            value: value.map(str::to_owned),
            mean_ns,
        }
    }

    #[test]
    fn times() {
        assert_eq!(fmt_time(0.0), "0 ns");
        assert_eq!(fmt_time(0.0001), "0.10 ps");
        assert_eq!(fmt_time(0.0123), "12.3 ps");
        assert_eq!(fmt_time(0.5), "500 ps");
        assert_eq!(fmt_time(0.9996), "1.00 ns");
        assert_eq!(fmt_time(1.0), "1.00 ns");
        assert_eq!(fmt_time(4.5678), "4.57 ns");
        assert_eq!(fmt_time(9.996), "10.0 ns");
        assert_eq!(fmt_time(12.345), "12.3 ns");
        assert_eq!(fmt_time(99.96), "100 ns");
        assert_eq!(fmt_time(999.4), "999 ns");
        assert_eq!(fmt_time(999.6), "1.00 µs");
        assert_eq!(fmt_time(1234.5), "1.23 µs");
        assert_eq!(fmt_time(45_678.0), "45.7 µs");
        assert_eq!(fmt_time(1.5e6), "1.50 ms");
        assert_eq!(fmt_time(2.5e9), "2.50 s");
        assert_eq!(fmt_time(1.2e12), "1200 s");
        assert_eq!(fmt_time(-1.0), "n/a");
        assert_eq!(fmt_time(f64::NAN), "n/a");
        assert_eq!(fmt_time(f64::INFINITY), "n/a");
    }

    #[test]
    fn ratios() {
        assert_eq!(fmt_ratio(1.0), "1.00×");
        assert_eq!(fmt_ratio(1.076), "1.08×");
        assert_eq!(fmt_ratio(0.5), "0.50×");
        assert_eq!(fmt_ratio(12.0), "12.00×");
        assert_eq!(fmt_ratio(f64::INFINITY), "n/a");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(fmt_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(fmt_utc(951_868_799), "2000-02-29 23:59:59 UTC");
        assert_eq!(fmt_utc(951_868_800), "2000-03-01 00:00:00 UTC");
        assert_eq!(fmt_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(fmt_utc(1_709_164_800), "2024-02-29 00:00:00 UTC");
        assert_eq!(fmt_utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
        assert_eq!(fmt_utc(4_107_542_400), "2100-03-01 00:00:00 UTC");
    }

    #[test]
    fn group_tables() {
        let results = [
            measured("snapshot/read", "std::RwLock<Arc<T>>::read", None, 16.0),
            measured("snapshot/read", "acqrel::Snapshot::load", None, 2.5),
            measured("snapshot/read", "arc_swap::ArcSwap::load", None, 2.0),
            measured("latch/wait", "acqrel::Latch::wait", Some("4"), 1500.0),
            measured("latch/wait", "std::Barrier::wait", Some("4"), 3000.0),
            measured("latch/wait", "acqrel::Latch::wait", Some("8"), 2500.0),
            measured("solo", "acqrel::Solo|new", None, 0.5),
            measured("anchors_only", "std::thread::yield_now", None, 80.0),
        ];
        let expected = "\
### `anchors_only`

| operation | time | anchor | anchor time | ours/anchor |
|---|--:|---|--:|--:|
| — | — | `std::thread::yield_now` | 80.0 ns | — |

### `latch/wait`

| operation | time | anchor | anchor time | ours/anchor |
|---|--:|---|--:|--:|
| `acqrel::Latch::wait/4` | 1.50 µs | `std::Barrier::wait/4` | 3.00 µs | 0.50× |
| `acqrel::Latch::wait/8` | 2.50 µs | — | — | — |

### `snapshot/read`

| operation | time | anchor | anchor time | ours/anchor |
|---|--:|---|--:|--:|
| `acqrel::Snapshot::load` | 2.50 ns | `arc_swap::ArcSwap::load` | 2.00 ns | 1.25× |
| `acqrel::Snapshot::load` | 2.50 ns | `std::RwLock<Arc<T>>::read` | 16.0 ns | 0.16× |

### `solo`

| operation | time | anchor | anchor time | ours/anchor |
|---|--:|---|--:|--:|
| `acqrel::Solo\\|new` | 500 ps | — | — | — |

";
        assert_eq!(render_groups(&results), expected);
        assert_eq!(render_groups(&[]), "");
    }

    #[test]
    fn target_table() {
        let results = [
            measured("snapshot/read", "acqrel::Snapshot::load", None, 2.5),
            measured("snapshot/read", "arc_swap::ArcSwap::load", None, 2.0),
            measured("snapshot/read", "std::RwLock<Arc<T>>::read", None, 16.0),
            measured("latch/wait", "acqrel::Latch::wait", Some("4"), 1500.0),
            measured("latch/wait", "std::Barrier::wait", Some("4"), 3000.0),
        ];
        let targets = [
            Target::new(
                "snapshot/read",
                "acqrel::Snapshot::load",
                "arc_swap::ArcSwap::load",
                1.10,
            ),
            Target::new(
                "snapshot/read",
                "acqrel::Snapshot::load",
                "std::RwLock<Arc<T>>::read",
                0.5,
            ),
            Target::new(
                "latch/wait/4",
                "acqrel::Latch::wait",
                "std::Barrier::wait",
                0.5,
            ),
            Target::new(
                "latch/wait",
                "acqrel::Latch::wait",
                "std::Barrier::wait",
                1.0,
            ),
            Target::new("gone", "acqrel::Gone::new", "std::Gone::new", 1.0),
        ];
        let (text, counts) = render_targets(&results, &targets);
        let expected = "\
## Targets

| target | ours/anchor | max | status |
|---|--:|--:|---|
| `snapshot/read`: `acqrel::Snapshot::load` vs `arc_swap::ArcSwap::load` | 1.25× | 1.10× | **MISSED** |
| `snapshot/read`: `acqrel::Snapshot::load` vs `std::RwLock<Arc<T>>::read` | 0.16× | 0.50× | met |
| `latch/wait/4`: `acqrel::Latch::wait` vs `std::Barrier::wait` | 0.50× | 0.50× | met |
| `latch/wait`: `acqrel::Latch::wait` vs `std::Barrier::wait` | — | 1.00× | not measured |
| `gone`: `acqrel::Gone::new` vs `std::Gone::new` | — | 1.00× | not measured |

targets: 2 met, 1 MISSED, 2 not measured
";
        assert_eq!(text, expected);
        assert_eq!(
            counts,
            TargetCounts {
                met: 2,
                missed: 1,
                not_measured: 2
            }
        );

        let (text, counts) = render_targets(&results, &[]);
        assert_eq!(
            text,
            "## Targets\n\n`benches/targets.txt` lists no targets.\n"
        );
        assert_eq!(counts, TargetCounts::default());
    }
}
