//! The pipeline list itself: names, the default, and every pipeline's flags accepted by the
//! tools they go to (a flag flang rejects breaks every Fortran build under that pipeline).

use simgrad_build::pipeline::{Pipeline, DEFAULT_PIPELINE, PIPELINES};
use simgrad_tests::toolchain_or_skip;
use std::process::Command;

#[test]
fn names_are_unique_and_the_default_exists() {
    let mut names: Vec<&str> = PIPELINES.iter().map(|p| p.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), PIPELINES.len());
    let d = Pipeline::named("default").unwrap();
    assert_eq!(d.name, DEFAULT_PIPELINE);
    assert_eq!(
        PIPELINES[0].name, DEFAULT_PIPELINE,
        "the default comes first"
    );
    assert!(
        d.known_bad.is_none(),
        "the default pipeline is marked known bad"
    );
}

#[test]
fn every_pipeline_flag_is_accepted_by_its_tool() {
    let Some(tc) = toolchain_or_skip("pipeline flags") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("simgrad-pipeline-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join("k.c");
    std::fs::write(
        &c,
        "void k(long n, double *x) { for (long i = 0; i < n; i++) x[i] *= x[i]; }\n",
    )
    .unwrap();
    let f = dir.join("k.f90");
    std::fs::write(
        &f,
        "subroutine k(n, x) bind(C, name=\"k\")\n  use iso_c_binding\n  integer(c_int64_t), value :: n\n  real(c_double) :: x(n)\n  x = x * x\nend subroutine\n",
    )
    .unwrap();
    let mut bad = Vec::new();
    for p in PIPELINES {
        for (exe, src, flags) in [
            (&tc.clang, &c, p.pre),
            (&tc.clangxx, &c, p.pre),
            (&tc.flang, &f, p.pre_fortran),
        ] {
            let mut cmd = Command::new(exe);
            cmd.args(["-c", "-emit-llvm"]).args(flags);
            if exe == &tc.clangxx {
                cmd.args(["-x", "c++"]);
            }
            let out = cmd
                .arg(src)
                .arg("-o")
                .arg(dir.join("k.bc"))
                .output()
                .unwrap();
            if !out.status.success() {
                bad.push(format!(
                    "{}: {} {:?}: {}",
                    p.name,
                    exe.display(),
                    flags,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        // Enzyme's options are `opt` options registered by the plugin: an unknown one is an error.
        let out = Command::new(&tc.opt)
            .arg(dir.join("k.bc"))
            .arg(format!("-load-pass-plugin={}", tc.enzyme_plugin.display()))
            .arg("-passes=enzyme")
            .args(p.enzyme)
            .args(p.enzyme_fortran)
            .arg("-o")
            .arg(dir.join("k1.bc"))
            .output()
            .unwrap();
        if !out.status.success() {
            bad.push(format!(
                "{}: opt + Enzyme {:?} {:?}: {}",
                p.name,
                p.enzyme,
                p.enzyme_fortran,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        if let Some(level) = p.post {
            let out = Command::new(&tc.opt)
                .arg(level)
                .arg(dir.join("k.bc"))
                .arg("-o")
                .arg(dir.join("k2.bc"))
                .output()
                .unwrap();
            if !out.status.success() {
                bad.push(format!(
                    "{}: opt {level}: {}",
                    p.name,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
