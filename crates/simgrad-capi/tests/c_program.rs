//! A C11 program, compiled with `-Wall -Wextra -Werror` and Address/Leak/UB sanitizers against the
//! checked-in header, linked against the built `libsimgrad.so` and run on the fixture library:
//! the ABI as C sees it (struct layout, status returned by value, strings, handles).

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

const PROGRAM: &str = r#"
#include "simgrad.h"
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                  \
  do {                                                                               \
    simgrad_status s_ = (call);                                                      \
    if (s_ != SIMGRAD_OK) {                                                          \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__,                         \
              simgrad_status_name(s_), simgrad_last_error_message());                \
      return 1;                                                                      \
    }                                                                                \
  } while (0)

#define EXPECT(c)                                                                    \
  do {                                                                               \
    if (!(c)) {                                                                      \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #c);               \
      return 1;                                                                      \
    }                                                                                \
  } while (0)

static simgrad_tensor array(double *data, int64_t *shape) {
  simgrad_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = SIMGRAD_DEVICE_CPU;
  t.ndim = 1;
  t.dtype.code = SIMGRAD_DTYPE_CODE_FLOAT;
  t.dtype.bits = 64;
  t.dtype.lanes = 1;
  t.shape = shape;
  return t;
}

static simgrad_tensor size(int64_t *value) {
  simgrad_tensor t;
  memset(&t, 0, sizeof t);
  t.data = value;
  t.device.device_type = SIMGRAD_DEVICE_CPU;
  t.dtype.code = SIMGRAD_DTYPE_CODE_INT;
  t.dtype.bits = 64;
  t.dtype.lanes = 1;
  return t;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  EXPECT(simgrad_abi_version() == SIMGRAD_ABI_VERSION);
  EXPECT(strcmp(simgrad_version(), SIMGRAD_VERSION) == 0);
  EXPECT(strcmp(simgrad_last_error_message(), "") == 0);

  simgrad_library *lib = NULL;
  EXPECT(simgrad_library_open("/nonexistent.so", &lib) == SIMGRAD_ERR_LIBRARY);
  EXPECT(lib == NULL);
  EXPECT(strstr(simgrad_last_error_message(), "/nonexistent.so") != NULL);

  CHECK(simgrad_library_open(argv[1], &lib));
  size_t count = 0;
  CHECK(simgrad_library_kernel_count(lib, &count));
  EXPECT(count == 3);
  simgrad_kernel *k = NULL;
  CHECK(simgrad_library_kernel(lib, "scale", &k));
  simgrad_library_free(lib); /* the kernel keeps the library loaded */

  simgrad_arg_info info;
  CHECK(simgrad_kernel_arg_info(k, 1, &info));
  EXPECT(strcmp(info.name, "x") == 0 && info.kind == SIMGRAD_ARG_ARRAY && info.ndim == 1);

  int64_t n = 3, shape[3] = {3, 3, 3};
  double x[3] = {1, 2, 3}, y[3] = {0}, dx[3] = {1, 1, 1}, dy[3] = {0}, gx[3] = {0}, gy[3] = {1, 0, 2};
  simgrad_tensor args[3] = {size(&n), array(x, shape), array(y, shape)};
  CHECK(simgrad_kernel_call(k, args, 3));
  EXPECT(y[0] == 2 && y[1] == 4 && y[2] == 6);

  simgrad_tensor none;
  memset(&none, 0, sizeof none);
  simgrad_tensor tin[3] = {none, array(dx, shape), none};
  simgrad_tensor tout[3] = {none, none, array(dy, shape + 1)};
  CHECK(simgrad_kernel_jvp(k, args, 3, tin, tout));
  EXPECT(dy[0] == 2 && dy[1] == 2 && dy[2] == 2);

  simgrad_tensor cin[3] = {none, none, array(gy, shape)};
  simgrad_tensor cout[3] = {none, array(gx, shape), none};
  CHECK(simgrad_kernel_vjp(k, args, 3, cin, cout, 0));
  EXPECT(gx[0] == 2 && gx[1] == 0 && gx[2] == 4);
  CHECK(simgrad_kernel_vjp(k, args, 3, cin, cout, SIMGRAD_VJP_ACCUMULATE));
  EXPECT(gx[0] == 4 && gx[1] == 0 && gx[2] == 8);
  EXPECT(gy[0] == 1 && gy[1] == 0 && gy[2] == 2);

  args[2].data = x; /* y aliases x */
  EXPECT(simgrad_kernel_call(k, args, 3) == SIMGRAD_ERR_ALIAS);
  EXPECT(strstr(simgrad_last_error_message(), "overlaps") != NULL);
  EXPECT(strcmp(simgrad_status_name(SIMGRAD_ERR_ALIAS), "SIMGRAD_ERR_ALIAS") == 0);

  simgrad_kernel_free(k);
  simgrad_kernel_free(NULL);
  puts("ok");
  return 0;
}
"#;

/// The directory holding the `libsimgrad.so` cargo built for this test run.
fn libsimgrad_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    for dir in [deps.clone(), deps.parent().unwrap().to_path_buf()] {
        if dir.join("libsimgrad.so").exists() {
            return dir;
        }
    }
    panic!("libsimgrad.so not found next to {}", exe.display());
}

#[test]
fn a_c_program_uses_the_shared_library() {
    let fixture = fixture();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("program.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let exe = dir.path().join("program");
    let lib_dir = libsimgrad_dir();
    let include = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../include");
    let o = Command::new(c_compiler())
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g"])
        .args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
        .arg("-I")
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lsimgrad")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "compiling the C program failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let run = Command::new(&exe)
        .arg(&fixture.good)
        // Every handle is freed, so LeakSanitizer must find nothing.
        .env("ASAN_OPTIONS", "detect_leaks=1")
        .output()
        .unwrap();
    assert!(
        run.status.success() && String::from_utf8_lossy(&run.stdout).trim() == "ok",
        "the C program failed ({}):\nstdout:\n{}\nstderr:\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}
