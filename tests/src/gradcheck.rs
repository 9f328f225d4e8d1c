//! The verdict on one kernel: `simgrad_core::check` at several sizes and seeds plus
//! [`crate::extra`]'s semantic checks.
//!
//! Several sizes matter: `simgrad_core::check` binds every named size to one value (7 by
//! default), and some wrong derivatives only show at small sizes. Under the `O2` pipeline the
//! reverse mode of `rk2_logistic` (C corpus) is wrong for n < 4, where the loop vectoriser's
//! 4-wide body never runs and only the scalar remainder does, and right for n >= 4.

use crate::extra::extra_checks;
use simgrad_core::check::{check_kernel, CheckOptions};
use simgrad_core::{Kernel, Library};

/// Sizes every named size takes in turn.
pub const SIZES: &[i64] = &[1, 2, 3, 7];
/// Seeds of the random inputs.
pub const SEEDS: &[u64] = &[0, 1];

/// The verdict on one kernel.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Kernel name.
    pub kernel: String,
    /// Every failed comparison, one line each (`size 3 seed 0: vjp vs jvp ... rel. error 1e0`).
    pub failures: Vec<String>,
    /// The worst relative error over every gradient comparison.
    pub worst: f64,
    /// Number of comparisons made.
    pub comparisons: usize,
}

impl Verdict {
    /// Whether every comparison passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks `kernel` at every size in [`SIZES`] and seed in [`SEEDS`].
pub fn verdict(kernel: &Kernel) -> Verdict {
    let mut v = Verdict {
        kernel: kernel.name().to_string(),
        failures: Vec::new(),
        worst: 0.0,
        comparisons: 0,
    };
    for &size in SIZES {
        for &seed in SEEDS {
            let opts = CheckOptions {
                seed,
                size,
                ..CheckOptions::default()
            };
            match check_kernel(kernel, &opts) {
                Ok(results) => {
                    for r in results {
                        v.comparisons += 1;
                        if r.error.is_nan() || r.error > v.worst {
                            v.worst = if r.error.is_nan() {
                                f64::INFINITY
                            } else {
                                r.error.max(v.worst)
                            };
                        }
                        if !r.passed {
                            v.failures.push(format!(
                                "size {size} seed {seed}: {} rel. error {:.2e} (tolerance {:.0e}){}",
                                r.test,
                                r.error,
                                r.tolerance,
                                if r.note.is_empty() { String::new() } else { format!(" {}", r.note) }
                            ));
                        }
                    }
                }
                Err(e) => v
                    .failures
                    .push(format!("size {size} seed {seed}: check failed to run: {e}")),
            }
            for f in extra_checks(kernel, size, seed) {
                v.failures.push(format!("size {size} seed {seed}: {f}"));
            }
            v.comparisons += 1;
        }
    }
    v
}

/// Verdicts on every kernel of `lib`, in manifest order.
pub fn verdicts(lib: &Library) -> Vec<Verdict> {
    lib.kernels().iter().map(verdict).collect()
}
