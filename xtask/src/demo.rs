//! `cargo xtask demo`: shows what simgrad does, end to end, as a list of steps.
//!
//! Later parts of the demo (building a kernel library from a spec, calling it from C, C++,
//! Fortran and Python) are appended to [`steps`].

use std::time::Instant;

use anyhow::Result;

use crate::util::fmt_duration;
use crate::{setup, smoke};

/// One demo step: a title, one sentence saying what it shows, and the code.
pub struct DemoStep {
    /// Short title.
    pub title: &'static str,
    /// What the step shows, for a reader of the output.
    pub about: &'static str,
    /// The body.
    pub run: fn() -> Result<()>,
}

/// The demo, in order.
pub fn steps() -> Vec<DemoStep> {
    vec![
        DemoStep {
            title: "setup",
            about: "install or check LLVM 19, the Enzyme plugin and the Python environment \
                    (cached: fast after the first run)",
            run: setup::run,
        },
        DemoStep {
            title: "Enzyme smoke test",
            about: "compile plain C through clang → Enzyme → shared library and compare its \
                    derivatives with the analytic ones",
            run: smoke::run,
        },
        DemoStep {
            title: "the seed example from C",
            about: "build examples-c/kernels/simgrad.toml (C, C++ and Fortran kernels in one \
                    library), then call the classic 100-element kernel from C through simgrad.h: \
                    its JVP and VJP next to the analytic derivative",
            run: crate::examples::c_seed_example,
        },
        DemoStep {
            title: "Python: NumPy and PyTorch",
            about: "the classic ctypes example done with simgrad (forward mode of the seed \
                    kernel from NumPy), then a PyTorch training loop whose model runs a compiled \
                    Fortran heat solver, loss.backward() going through Enzyme's reverse mode",
            run: crate::examples::python_demo,
        },
        DemoStep {
            title: "LLTM: a PyTorch C++ extension whose backward is Enzyme's",
            about: "train the LLTM cell (plain C++ forward, built by simgrad; backward from \
                    Enzyme, not hand-written) for a few steps on random data",
            run: crate::examples::lltm_demo,
        },
        DemoStep {
            title: "inverse problem through a Fortran solver",
            about: "recover the diffusion coefficient field of a Fortran advection-diffusion \
                    solver from noisy observations with PyTorch's L-BFGS; the gradients are \
                    Enzyme's reverse mode of the flang-compiled solver",
            run: crate::examples::fortran_inverse_problem,
        },
    ]
}

/// Runs every demo step, stopping at the first failure.
pub fn run() -> Result<()> {
    let start = Instant::now();
    let steps = steps();
    let n = steps.len();
    for (i, step) in steps.iter().enumerate() {
        println!("\n=== demo {}/{n}: {} — {}", i + 1, step.title, step.about);
        let t = Instant::now();
        (step.run)()?;
        println!(
            "=== demo {}/{n}: {} done in {}",
            i + 1,
            step.title,
            fmt_duration(t.elapsed())
        );
    }
    println!("\ndemo finished in {}", fmt_duration(start.elapsed()));
    Ok(())
}
