/*
 * drive_all.c: calls every function of simgrad.h (and the panic-boundary test hook) through
 * its success path and its error paths, and prints one row per case:
 *
 *     <function>: <case> | <status name, or - for functions returning a value> | <message>
 *
 * The message is simgrad_last_error_message() after the call (newlines written as \n, `|` as
 * \|), or for value-returning functions what the call returned. Every case checks the status,
 * that the message is "" after SIMGRAD_OK and starts with "<function>: " otherwise, and that
 * output parameters are left alone on failure. Exit status 0 only if every case passed.
 *
 * Usage: drive_all FIXTURE_DIR WORK_DIR CACHE_DIR [--no-enzyme] [--require-sanitizers]
 *
 *   FIXTURE_DIR  the hand-written fixture libraries of tests/common (libgood.so, libabi2.so, ...)
 *   WORK_DIR     an empty writable directory: the program writes kernel specs there
 *   CACHE_DIR    the build cache for simgrad_build (one case builds with NULL options, which
 *                uses the default cache, $SIMGRAD_CACHE_DIR or ~/.cache/simgrad)
 *   --no-enzyme  no Enzyme toolchain here: every build is expected to fail with TOOLCHAIN
 *   --require-sanitizers  fail unless AddressSanitizer and UBSan are compiled in and live
 *
 * Run by tests/drive_all.rs under ASan/UBSan and once under valgrind; its output (with paths
 * replaced by placeholders) is the C table of docs/errors.md.
 */
#define _POSIX_C_SOURCE 200809L

#include "simgrad.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The panic-boundary test hook: exported by libsimgrad, deliberately left out of simgrad.h. */
simgrad_status simgrad__test_panic(void);

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DRIVE_ALL_ASAN 1
#endif
#if __has_feature(undefined_behavior_sanitizer)
#define DRIVE_ALL_UBSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define DRIVE_ALL_ASAN 1
#endif
#ifdef DRIVE_ALL_ASAN
#include <sanitizer/asan_interface.h>
#endif

static int failures;
static int cases;

#define EXPECT(c)                                                                     \
  do {                                                                                \
    if (!(c)) {                                                                       \
      fprintf(stderr, "drive_all.c:%d: expected %s\n", __LINE__, #c);                 \
      failures++;                                                                     \
    }                                                                                 \
  } while (0)

static void print_escaped(const char *s) {
  for (; *s; s++) {
    if (*s == '\n') {
      fputs("\\n", stdout);
    } else if (*s == '|') {
      fputs("\\|", stdout);
    } else {
      putchar(*s);
    }
  }
}

/* One status-returning case: prints the row and checks status and message. */
static int check_status(const char *fn, const char *what, simgrad_status got, simgrad_status want,
                        int line) {
  const char *msg = simgrad_last_error_message();
  size_t n = strlen(fn);
  int ok = got == want;
  cases++;
  printf("%s: %s | %s | ", fn, what, simgrad_status_name(got));
  print_escaped(msg);
  putchar('\n');
  if (got == SIMGRAD_OK) {
    ok = ok && msg[0] == '\0';
  } else {
    ok = ok && strncmp(msg, fn, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ';
  }
  if (!ok) {
    fprintf(stderr, "drive_all.c:%d: %s: %s: expected %s, got %s: \"%s\"\n", line, fn, what,
            simgrad_status_name(want), simgrad_status_name(got), msg);
    failures++;
  }
  return ok;
}

/* CASE(fn, "what", WANT, (args...)) calls fn(args...) and checks it returned WANT. */
#define CASE(fn, what, want, args) check_status(#fn, what, fn args, want, __LINE__)

/* One case of a function that returns a value instead of a status. */
static void value_row(const char *fn, const char *what, int ok, const char *shown, int line) {
  cases++;
  printf("%s: %s | - | ", fn, what);
  print_escaped(shown);
  putchar('\n');
  if (!ok) {
    fprintf(stderr, "drive_all.c:%d: %s: %s: unexpected result \"%s\"\n", line, fn, what, shown);
    failures++;
  }
}

#define VALUE(fn, what, ok, shown) value_row(#fn, what, ok, shown, __LINE__)

/* ---- descriptors ---------------------------------------------------------------------- */

static simgrad_tensor tensor(void *data, uint8_t code, uint8_t bits, int32_t ndim,
                             int64_t *shape) {
  simgrad_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = SIMGRAD_DEVICE_CPU;
  t.ndim = ndim;
  t.dtype.code = code;
  t.dtype.bits = bits;
  t.dtype.lanes = 1;
  t.shape = shape;
  return t;
}

static simgrad_tensor f64_array(double *data, int64_t *shape) {
  return tensor(data, SIMGRAD_DTYPE_CODE_FLOAT, 64, 1, shape);
}

static simgrad_tensor f64_value(double *v) {
  return tensor(v, SIMGRAD_DTYPE_CODE_FLOAT, 64, 0, NULL);
}

static simgrad_tensor i64_value(int64_t *v) {
  return tensor(v, SIMGRAD_DTYPE_CODE_INT, 64, 0, NULL);
}

static simgrad_tensor absent(void) {
  return tensor(NULL, SIMGRAD_DTYPE_CODE_FLOAT, 64, 0, NULL);
}

/* ---- files ------------------------------------------------------------------------------ */

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (!p) {
    abort();
  }
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static void write_file(const char *dir, const char *name, const char *text) {
  char *path = join(dir, name);
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    fprintf(stderr, "drive_all: cannot write %s\n", path);
    exit(2);
  }
  free(path);
}

/* Creates WORK/name holding simgrad.toml (`spec`) and the source `src_name` (`src`). */
static char *project(const char *work, const char *name, const char *spec, const char *src_name,
                     const char *src) {
  char *dir = join(work, name);
  if (mkdir(dir, 0755) != 0) {
    fprintf(stderr, "drive_all: cannot create %s\n", dir);
    exit(2);
  }
  write_file(dir, "simgrad.toml", spec);
  if (src_name) {
    write_file(dir, src_name, src);
  }
  char *spec_path = join(dir, "simgrad.toml");
  free(dir);
  return spec_path;
}

static const char SQUARE_SPEC[] =
    "[build]\n"
    "name = \"drive_all_square\"\n"
    "\n"
    "[[kernel]]\n"
    "symbol = \"square\"\n"
    "sources = [\"square.c\"]\n"
    "args = [\n"
    "  { name = \"n\", kind = \"size\" },\n"
    "  { name = \"x\", dtype = \"f64\", shape = [\"n\"] },\n"
    "  { name = \"y\", dtype = \"f64\", shape = [\"n\"], intent = \"out\" },\n"
    "]\n";

static const char SQUARE_SRC[] =
    "#include <stdint.h>\n"
    "void square(int64_t n, const double *x, double *y) {\n"
    "    for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i];\n"
    "}\n";

/* Each call adds one more to y than the last: finite differences see a jump of 1/(2h). */
static const char DRIFT_SPEC[] =
    "[build]\n"
    "name = \"drive_all_drift\"\n"
    "\n"
    "[[kernel]]\n"
    "symbol = \"drift\"\n"
    "sources = [\"drift.c\"]\n"
    "args = [\n"
    "  { name = \"n\", kind = \"size\" },\n"
    "  { name = \"x\", dtype = \"f64\", shape = [\"n\"] },\n"
    "  { name = \"y\", dtype = \"f64\", shape = [\"n\"], intent = \"out\" },\n"
    "]\n";

static const char DRIFT_SRC[] =
    "#include <stdint.h>\n"
    "static int64_t calls;\n"
    "void drift(int64_t n, const double *x, double *y) {\n"
    "    calls++;\n"
    "    for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i] + (double)calls;\n"
    "}\n";

/* ---- the cases -------------------------------------------------------------------------- */

static void versions_and_errors(void) {
  VALUE(simgrad_last_error_message, "before any call", simgrad_last_error_message()[0] == '\0',
        simgrad_last_error_message());
  VALUE(simgrad_version, "equals SIMGRAD_VERSION",
        strcmp(simgrad_version(), SIMGRAD_VERSION) == 0, "SIMGRAD_VERSION");
  VALUE(simgrad_abi_version, "equals SIMGRAD_ABI_VERSION",
        simgrad_abi_version() == SIMGRAD_ABI_VERSION, "SIMGRAD_ABI_VERSION");
  static const char *const names[] = {
      "SIMGRAD_OK",          "SIMGRAD_ERR_NULL_ARGUMENT", "SIMGRAD_ERR_INVALID_ARGUMENT",
      "SIMGRAD_ERR_DTYPE",   "SIMGRAD_ERR_SHAPE",         "SIMGRAD_ERR_LAYOUT",
      "SIMGRAD_ERR_ALIAS",   "SIMGRAD_ERR_NOT_FOUND",     "SIMGRAD_ERR_LIBRARY",
      "SIMGRAD_ERR_MANIFEST", "SIMGRAD_ERR_ABI_MISMATCH", "SIMGRAD_ERR_SPEC",
      "SIMGRAD_ERR_BUILD",   "SIMGRAD_ERR_TOOLCHAIN",     "SIMGRAD_ERR_VERIFY",
      "SIMGRAD_ERR_KERNEL",  "SIMGRAD_ERR_IO",            "SIMGRAD_ERR_PANIC",
      "SIMGRAD_ERR_BUFFER_TOO_SMALL",
  };
  int all = 1;
  for (uint32_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    all = all && strcmp(simgrad_status_name(i), names[i]) == 0;
  }
  VALUE(simgrad_status_name, "every code 0..18", all, "its enumerator's name");
  VALUE(simgrad_status_name, "19 (not a status)",
        strcmp(simgrad_status_name(19), "SIMGRAD_UNKNOWN_STATUS") == 0, simgrad_status_name(19));
  VALUE(simgrad_status_name, "UINT32_MAX",
        strcmp(simgrad_status_name(UINT32_MAX), "SIMGRAD_UNKNOWN_STATUS") == 0,
        simgrad_status_name(UINT32_MAX));

  CASE(simgrad__test_panic, "a panic inside simgrad", SIMGRAD_ERR_PANIC, ());
  VALUE(simgrad_last_error_message, "after a failed call",
        strstr(simgrad_last_error_message(), "simgrad__test_panic was called") != NULL,
        simgrad_last_error_message());
}

/* Opens the library at `path`, expecting `want`; on failure `*out` must stay untouched. */
static simgrad_library *open_case(const char *what, const char *path, simgrad_status want) {
  static char sentinel;
  simgrad_library *lib = (simgrad_library *)(void *)&sentinel;
  int ok = CASE(simgrad_library_open, what, want, (path, &lib));
  if (want != SIMGRAD_OK) {
    EXPECT(lib == (simgrad_library *)(void *)&sentinel);
    return NULL;
  }
  EXPECT(ok && lib != NULL && lib != (simgrad_library *)(void *)&sentinel);
  return ok ? lib : NULL;
}

static void with_manifest_case(const char *what, const char *path, const char *manifest,
                               simgrad_status want) {
  static char sentinel;
  simgrad_library *lib = (simgrad_library *)(void *)&sentinel;
  CASE(simgrad_library_open_with_manifest, what, want, (path, manifest, &lib));
  if (want != SIMGRAD_OK) {
    EXPECT(lib == (simgrad_library *)(void *)&sentinel);
  } else {
    EXPECT(lib != (simgrad_library *)(void *)&sentinel);
    simgrad_library_free(lib);
  }
}

static simgrad_library *opening(const char *fx) {
  char *good = join(fx, "libgood.so");
  char *missing = join(fx, "does-not-exist.so");
  char *text = join(fx, "not-a-library.so");
  char *no_manifest = join(fx, "libno_manifest.so");
  char *corrupt = join(fx, "libcorrupt.so");
  char *null_manifest = join(fx, "libnull_manifest.so");
  char *abi2 = join(fx, "libabi2.so");
  char *ghost = join(fx, "libmissing_symbol.so");
  char *manifest = join(fx, "fixture.json");
  char *corrupt_json = join(fx, "corrupt.json");
  char *missing_json = join(fx, "missing.json");
  simgrad_library *out = NULL;

  CASE(simgrad_library_open, "NULL path", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, &out));
  CASE(simgrad_library_open, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT, (good, NULL));
  open_case("empty path", "", SIMGRAD_ERR_INVALID_ARGUMENT);
  open_case("missing file", missing, SIMGRAD_ERR_LIBRARY);
  open_case("path that is not UTF-8", "/nonexistent/\xff\xfe.so", SIMGRAD_ERR_LIBRARY);
  open_case("not a shared library", text, SIMGRAD_ERR_LIBRARY);
  open_case("no simgrad_manifest symbol", no_manifest, SIMGRAD_ERR_MANIFEST);
  open_case("manifest is not JSON", corrupt, SIMGRAD_ERR_MANIFEST);
  open_case("simgrad_manifest returns NULL", null_manifest, SIMGRAD_ERR_MANIFEST);
  open_case("abi_version 2", abi2, SIMGRAD_ERR_ABI_MISMATCH);
  open_case("a listed symbol is missing", ghost, SIMGRAD_ERR_LIBRARY);

  CASE(simgrad_library_open_with_manifest, "NULL path", SIMGRAD_ERR_NULL_ARGUMENT,
       (NULL, manifest, &out));
  CASE(simgrad_library_open_with_manifest, "NULL manifest_path", SIMGRAD_ERR_NULL_ARGUMENT,
       (no_manifest, NULL, &out));
  CASE(simgrad_library_open_with_manifest, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT,
       (no_manifest, manifest, NULL));
  with_manifest_case("empty manifest_path", no_manifest, "", SIMGRAD_ERR_INVALID_ARGUMENT);
  with_manifest_case("missing manifest file", no_manifest, missing_json, SIMGRAD_ERR_MANIFEST);
  with_manifest_case("manifest file is not JSON", no_manifest, corrupt_json,
                     SIMGRAD_ERR_MANIFEST);
  with_manifest_case("missing library", missing, manifest, SIMGRAD_ERR_LIBRARY);
  with_manifest_case("a library without the manifest's symbols", text, manifest,
                     SIMGRAD_ERR_LIBRARY);
  with_manifest_case("library and manifest file", no_manifest, manifest, SIMGRAD_OK);

  simgrad_library *lib = open_case("a simgrad kernel library", good, SIMGRAD_OK);
  free(good);
  free(missing);
  free(text);
  free(no_manifest);
  free(corrupt);
  free(null_manifest);
  free(abi2);
  free(ghost);
  free(manifest);
  free(corrupt_json);
  free(missing_json);
  return lib;
}

static void library_inspection(const simgrad_library *lib, const char *fx) {
  const char *s = "untouched";
  size_t n = 99;

  CASE(simgrad_library_manifest, "NULL lib", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, &s));
  CASE(simgrad_library_manifest, "NULL out_json", SIMGRAD_ERR_NULL_ARGUMENT, (lib, NULL));
  EXPECT(strcmp(s, "untouched") == 0);
  CASE(simgrad_library_manifest, "the embedded JSON", SIMGRAD_OK, (lib, &s));
  EXPECT(strstr(s, "\"manifest_version\": 1") != NULL);

  s = "untouched";
  CASE(simgrad_library_path, "NULL lib", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, &s));
  CASE(simgrad_library_path, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT, (lib, NULL));
  EXPECT(strcmp(s, "untouched") == 0);
  CASE(simgrad_library_path, "the path it was opened from", SIMGRAD_OK, (lib, &s));
  char *good = join(fx, "libgood.so");
  EXPECT(strcmp(s, good) == 0);
  free(good);

  CASE(simgrad_library_kernel_count, "NULL lib", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, &n));
  CASE(simgrad_library_kernel_count, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT, (lib, NULL));
  EXPECT(n == 99);
  CASE(simgrad_library_kernel_count, "three kernels", SIMGRAD_OK, (lib, &n));
  EXPECT(n == 3);

  s = "untouched";
  CASE(simgrad_library_kernel_name, "NULL lib", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, 0, &s));
  CASE(simgrad_library_kernel_name, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT, (lib, 0, NULL));
  CASE(simgrad_library_kernel_name, "index 3 of 3", SIMGRAD_ERR_NOT_FOUND, (lib, 3, &s));
  CASE(simgrad_library_kernel_name, "index SIZE_MAX", SIMGRAD_ERR_NOT_FOUND,
       (lib, SIZE_MAX, &s));
  EXPECT(strcmp(s, "untouched") == 0);
  CASE(simgrad_library_kernel_name, "index 2", SIMGRAD_OK, (lib, 2, &s));
  EXPECT(strcmp(s, "fails") == 0);

  static char sentinel;
  simgrad_kernel *k = (simgrad_kernel *)(void *)&sentinel;
  CASE(simgrad_library_kernel, "NULL lib", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, "scale", &k));
  CASE(simgrad_library_kernel, "NULL name", SIMGRAD_ERR_NULL_ARGUMENT, (lib, NULL, &k));
  CASE(simgrad_library_kernel, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT, (lib, "scale", NULL));
  CASE(simgrad_library_kernel, "unknown kernel", SIMGRAD_ERR_NOT_FOUND, (lib, "nope", &k));
  CASE(simgrad_library_kernel, "empty name", SIMGRAD_ERR_NOT_FOUND, (lib, "", &k));
  CASE(simgrad_library_kernel, "name that is not UTF-8", SIMGRAD_ERR_INVALID_ARGUMENT,
       (lib, "sc\xff", &k));
  EXPECT(k == (simgrad_kernel *)(void *)&sentinel);
}

static simgrad_kernel *get_kernel(const simgrad_library *lib, const char *name) {
  simgrad_kernel *k = NULL;
  if (simgrad_library_kernel(lib, name, &k) != SIMGRAD_OK) {
    fprintf(stderr, "drive_all: kernel %s: %s\n", name, simgrad_last_error_message());
    exit(2);
  }
  return k;
}

static void kernel_inspection(const simgrad_kernel *scal, const simgrad_kernel *fails) {
  const char *s = "untouched";
  size_t n = 99;
  uint32_t u = 99;
  simgrad_arg_info info;
  memset(&info, 0xAB, sizeof info);

  CASE(simgrad_kernel_name, "NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, &s));
  CASE(simgrad_kernel_name, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT, (scal, NULL));
  EXPECT(strcmp(s, "untouched") == 0);
  CASE(simgrad_kernel_name, "its name", SIMGRAD_OK, (scal, &s));
  EXPECT(strcmp(s, "scal") == 0);

  CASE(simgrad_kernel_arg_count, "NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, &n));
  CASE(simgrad_kernel_arg_count, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT, (scal, NULL));
  EXPECT(n == 99);
  CASE(simgrad_kernel_arg_count, "four arguments", SIMGRAD_OK, (scal, &n));
  EXPECT(n == 4);

  CASE(simgrad_kernel_arg_info, "NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, 0, &info));
  CASE(simgrad_kernel_arg_info, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT, (scal, 0, NULL));
  CASE(simgrad_kernel_arg_info, "index 4 of 4", SIMGRAD_ERR_NOT_FOUND, (scal, 4, &info));
  CASE(simgrad_kernel_arg_info, "index SIZE_MAX", SIMGRAD_ERR_NOT_FOUND,
       (scal, SIZE_MAX, &info));
  EXPECT(info.kind == 0xABABABABu);
  CASE(simgrad_kernel_arg_info, "the size `n`", SIMGRAD_OK, (scal, 0, &info));
  EXPECT(strcmp(info.name, "n") == 0 && info.kind == SIMGRAD_ARG_SIZE &&
         info.dtype.code == SIMGRAD_DTYPE_CODE_INT && info.dtype.bits == 64 &&
         info.differentiable == 0 && info.ndim == 0);
  CASE(simgrad_kernel_arg_info, "the scalar `a`", SIMGRAD_OK, (scal, 1, &info));
  EXPECT(strcmp(info.name, "a") == 0 && info.kind == SIMGRAD_ARG_SCALAR &&
         info.dtype.code == SIMGRAD_DTYPE_CODE_FLOAT && info.differentiable == 1);
  CASE(simgrad_kernel_arg_info, "the output array `y`", SIMGRAD_OK, (scal, 3, &info));
  EXPECT(strcmp(info.name, "y") == 0 && info.kind == SIMGRAD_ARG_ARRAY &&
         info.intent == SIMGRAD_INTENT_OUT && info.ndim == 1 && info.dtype.lanes == 1);

  CASE(simgrad_kernel_has_mode, "NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT,
       (NULL, SIMGRAD_MODE_VJP, &u));
  CASE(simgrad_kernel_has_mode, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT,
       (scal, SIMGRAD_MODE_VJP, NULL));
  CASE(simgrad_kernel_has_mode, "mode 3", SIMGRAD_ERR_NOT_FOUND, (scal, 3, &u));
  EXPECT(u == 99);
  CASE(simgrad_kernel_has_mode, "VJP of a kernel built with it", SIMGRAD_OK,
       (scal, SIMGRAD_MODE_VJP, &u));
  EXPECT(u == 1);
  CASE(simgrad_kernel_has_mode, "JVP of a primal-only kernel", SIMGRAD_OK,
       (fails, SIMGRAD_MODE_JVP, &u));
  EXPECT(u == 0);

  u = 99;
  CASE(simgrad_kernel_memory_order, "NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, &u));
  CASE(simgrad_kernel_memory_order, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT, (scal, NULL));
  EXPECT(u == 99);
  CASE(simgrad_kernel_memory_order, "row-major", SIMGRAD_OK, (scal, &u));
  EXPECT(u == SIMGRAD_ORDER_C);
}

/* The buffers of one call of `scale(n, x, y)`: y = 2 x. */
struct scale_call {
  int64_t n;
  int64_t shape[3];
  double x[4], y[4], dx[4], dy[4], gx[4], gy[4];
  simgrad_tensor args[4];
};

static void scale_reset(struct scale_call *c) {
  memset(c, 0, sizeof *c);
  c->n = 3;
  c->shape[0] = c->shape[1] = c->shape[2] = 3;
  for (int i = 0; i < 4; i++) {
    c->x[i] = i + 1;
    c->dx[i] = 1;
    c->gy[i] = i;
  }
  c->args[0] = i64_value(&c->n);
  c->args[1] = f64_array(c->x, &c->shape[0]);
  c->args[2] = f64_array(c->y, &c->shape[1]);
  c->args[3] = f64_array(c->dy, &c->shape[2]);
}

static void calls(const simgrad_kernel *scale, const simgrad_kernel *scal,
                  const simgrad_kernel *fails) {
  struct scale_call c;
  size_t nargs;
#define SCALE_CASE(what, want, edit)                                                         \
  do {                                                                                       \
    scale_reset(&c);                                                                         \
    nargs = 3;                                                                               \
    edit;                                                                                    \
    int ok_ = CASE(simgrad_kernel_call, what, want, (scale, c.args, nargs));                 \
    if (ok_ && (want) != SIMGRAD_OK) {                                                       \
      EXPECT(c.y[0] == 0 && c.y[1] == 0 && c.y[2] == 0 && c.x[0] == 1);                      \
    }                                                                                        \
  } while (0)

  scale_reset(&c);
  CASE(simgrad_kernel_call, "NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, c.args, 3));
  CASE(simgrad_kernel_call, "NULL args, nargs 3", SIMGRAD_ERR_NULL_ARGUMENT, (scale, NULL, 3));
  CASE(simgrad_kernel_call, "NULL args, nargs 0", SIMGRAD_ERR_INVALID_ARGUMENT,
       (scale, NULL, 0));
  SCALE_CASE("2 of 3 arguments", SIMGRAD_ERR_INVALID_ARGUMENT, nargs = 2);
  SCALE_CASE("4 of 3 arguments", SIMGRAD_ERR_INVALID_ARGUMENT, nargs = 4);
  SCALE_CASE("f32 array for f64", SIMGRAD_ERR_DTYPE, c.args[1].dtype.bits = 32);
  SCALE_CASE("i64 array for f64", SIMGRAD_ERR_DTYPE, c.args[1].dtype.code = 0);
  SCALE_CASE("unsupported DLPack code (bfloat)", SIMGRAD_ERR_DTYPE, c.args[1].dtype.code = 4);
  SCALE_CASE("unsupported bits (f16)", SIMGRAD_ERR_DTYPE, c.args[1].dtype.bits = 16);
  SCALE_CASE("two lanes", SIMGRAD_ERR_DTYPE, c.args[1].dtype.lanes = 2);
  SCALE_CASE("i32 value for an i64 size", SIMGRAD_ERR_DTYPE, c.args[0].dtype.bits = 32);
  SCALE_CASE("rank 2 for rank 1", SIMGRAD_ERR_SHAPE, (c.args[1].ndim = 2, c.shape[0] = 1));
  SCALE_CASE("rank 1 for a size", SIMGRAD_ERR_SHAPE,
             (c.args[0].ndim = 1, c.args[0].shape = &c.shape[2]));
  SCALE_CASE("negative ndim", SIMGRAD_ERR_SHAPE, c.args[1].ndim = -1);
  SCALE_CASE("NULL shape with ndim 1", SIMGRAD_ERR_NULL_ARGUMENT, c.args[1].shape = NULL);
  SCALE_CASE("x has 2 elements, n is 3", SIMGRAD_ERR_SHAPE, c.shape[0] = 2);
  SCALE_CASE("negative size", SIMGRAD_ERR_SHAPE, c.n = -1);
  SCALE_CASE("negative dim", SIMGRAD_ERR_SHAPE, c.shape[1] = -3);
  SCALE_CASE("NULL data of an array", SIMGRAD_ERR_NULL_ARGUMENT, c.args[1].data = NULL);
  SCALE_CASE("NULL data of a size", SIMGRAD_ERR_NULL_ARGUMENT, c.args[0].data = NULL);
  SCALE_CASE("strides [2] (every other element)", SIMGRAD_ERR_LAYOUT,
             (c.shape[2] = 2, c.args[1].strides = &c.shape[2]));
  SCALE_CASE("device type 2 (CUDA)", SIMGRAD_ERR_LAYOUT, c.args[1].device.device_type = 2);
  SCALE_CASE("y is x", SIMGRAD_ERR_ALIAS, c.args[2].data = c.x);
  SCALE_CASE("y overlaps x by two elements", SIMGRAD_ERR_ALIAS, c.args[2].data = c.x + 1);
  SCALE_CASE("y at x through byte_offset", SIMGRAD_ERR_ALIAS,
             (c.args[2].byte_offset = (uint64_t)((uintptr_t)c.x - (uintptr_t)c.y)));
  SCALE_CASE("n = 0 with NULL arrays", SIMGRAD_OK,
             (c.n = 0, c.shape[0] = c.shape[1] = 0, c.args[1].data = NULL,
              c.args[2].data = NULL));
  SCALE_CASE("y = 2 x", SIMGRAD_OK, (void)0);
  EXPECT(c.y[0] == 2 && c.y[1] == 4 && c.y[2] == 6 && c.y[3] == 0);
  SCALE_CASE("explicit contiguous strides and a byte_offset", SIMGRAD_OK,
             (c.shape[2] = 1, c.args[1].strides = &c.shape[2], c.n = 2, c.shape[0] = 2,
              c.shape[1] = 2, c.args[1].byte_offset = sizeof(double)));
  EXPECT(c.y[0] == 4 && c.y[1] == 6 && c.y[2] == 0);

  /* scal(n, a, x, y): y = a x, with a scalar argument. */
  int64_t n = 3, shape[2] = {3, 3}, shape2[2] = {1, 3};
  double a = 2, x[3] = {1, 2, 3}, y[3] = {0};
  simgrad_tensor sargs[4] = {i64_value(&n), f64_value(&a), f64_array(x, shape),
                             f64_array(y, shape + 1)};
  sargs[1].data = NULL;
  CASE(simgrad_kernel_call, "NULL data of a scalar", SIMGRAD_ERR_NULL_ARGUMENT, (scal, sargs, 4));
  sargs[1] = f64_array(&a, shape2);
  CASE(simgrad_kernel_call, "scalar given as an array", SIMGRAD_ERR_SHAPE, (scal, sargs, 4));
  sargs[1] = f64_value(&a);
  sargs[1].dtype.bits = 32;
  CASE(simgrad_kernel_call, "f32 scalar for f64", SIMGRAD_ERR_DTYPE, (scal, sargs, 4));
  sargs[1] = f64_value(&a);
  CASE(simgrad_kernel_call, "a scalar argument", SIMGRAD_OK, (scal, sargs, 4));
  EXPECT(y[0] == 2 && y[1] == 4 && y[2] == 6);

  int64_t two = 2;
  double buf[2] = {1, 2};
  simgrad_tensor fargs[1] = {f64_array(buf, &two)};
  CASE(simgrad_kernel_call, "the kernel returns status 7", SIMGRAD_ERR_KERNEL, (fails, fargs, 1));
#undef SCALE_CASE
}

static void derivatives(const simgrad_kernel *scale, const simgrad_kernel *fails) {
  struct scale_call c;
  simgrad_tensor none = absent();
  simgrad_tensor tin[3] = {none, none, none}, tout[3] = {none, none, none};
  const simgrad_tensor *tin_p, *tout_p;
  scale_reset(&c);
#define JVP_CASE(what, want, edit)                                                           \
  do {                                                                                       \
    scale_reset(&c);                                                                         \
    tin[0] = none;                                                                           \
    tin[1] = f64_array(c.dx, &c.shape[2]);                                                   \
    tin[2] = none;                                                                           \
    tout[0] = none;                                                                          \
    tout[1] = none;                                                                          \
    tout[2] = f64_array(c.dy, &c.shape[2]);                                                  \
    tin_p = tin;                                                                             \
    tout_p = tout;                                                                           \
    edit;                                                                                    \
    int ok_ = CASE(simgrad_kernel_jvp, what, want, (scale, c.args, 3, tin_p, tout_p));       \
    if (ok_ && (want) != SIMGRAD_OK) {                                                       \
      EXPECT(c.y[0] == 0 && c.dy[0] == 0 && c.dx[0] == 1);                                   \
    }                                                                                        \
  } while (0)

  CASE(simgrad_kernel_jvp, "NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, c.args, 3, tin, tout));
  CASE(simgrad_kernel_jvp, "NULL args, nargs 3", SIMGRAD_ERR_NULL_ARGUMENT,
       (scale, NULL, 3, NULL, NULL));
  CASE(simgrad_kernel_jvp, "a primal-only kernel", SIMGRAD_ERR_NOT_FOUND,
       (fails, NULL, 0, NULL, NULL));
  JVP_CASE("input tangent of the output `y`", SIMGRAD_ERR_INVALID_ARGUMENT,
           tin[2] = f64_array(c.gy, &c.shape[2]));
  JVP_CASE("tangent of the size `n`", SIMGRAD_ERR_INVALID_ARGUMENT, tin[0] = i64_value(&c.n));
  JVP_CASE("f32 tangent of an f64 array", SIMGRAD_ERR_DTYPE, tin[1].dtype.bits = 32);
  JVP_CASE("tangent of 2 elements for 3", SIMGRAD_ERR_SHAPE, c.shape[2] = 2);
  JVP_CASE("tangent with NULL shape", SIMGRAD_ERR_NULL_ARGUMENT, tin[1].shape = NULL);
  JVP_CASE("tangent on device type 2", SIMGRAD_ERR_LAYOUT, tin[1].device.device_type = 2);
  JVP_CASE("output tangent is the input tangent", SIMGRAD_ERR_ALIAS, tout[2].data = c.dx);
  JVP_CASE("output tangent is the argument `x`", SIMGRAD_ERR_ALIAS, tout[2].data = c.x);
  JVP_CASE("NULL tangent lists (all absent)", SIMGRAD_OK, (tin_p = NULL, tout_p = NULL));
  JVP_CASE("dy = 2 dx", SIMGRAD_OK, (void)0);
  EXPECT(c.y[0] == 2 && c.y[2] == 6 && c.dy[0] == 2 && c.dy[2] == 2 && c.dx[0] == 1);
#undef JVP_CASE

  simgrad_tensor cin[3] = {none, none, none}, cout[3] = {none, none, none};
  const simgrad_tensor *cin_p, *cout_p;
#define VJP_CASE(what, want, flags, edit)                                                    \
  do {                                                                                       \
    scale_reset(&c);                                                                         \
    c.gx[0] = 100;                                                                           \
    cin[0] = none;                                                                           \
    cin[1] = none;                                                                           \
    cin[2] = f64_array(c.gy, &c.shape[2]);                                                   \
    cout[0] = none;                                                                          \
    cout[1] = f64_array(c.gx, &c.shape[2]);                                                  \
    cout[2] = none;                                                                          \
    cin_p = cin;                                                                             \
    cout_p = cout;                                                                           \
    edit;                                                                                    \
    int ok_ = CASE(simgrad_kernel_vjp, what, want, (scale, c.args, 3, cin_p, cout_p, flags)); \
    if (ok_ && (want) != SIMGRAD_OK) {                                                       \
      EXPECT(c.gx[0] == 100 && c.gy[1] == 1 && c.y[0] == 0);                                 \
    }                                                                                        \
  } while (0)

  CASE(simgrad_kernel_vjp, "NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT,
       (NULL, c.args, 3, NULL, NULL, 0));
  CASE(simgrad_kernel_vjp, "NULL args with cotangent lists", SIMGRAD_ERR_NULL_ARGUMENT,
       (scale, NULL, 3, cin, cout, 0));
  CASE(simgrad_kernel_vjp, "a primal-only kernel", SIMGRAD_ERR_NOT_FOUND,
       (fails, NULL, 0, NULL, NULL, 0));
  VJP_CASE("unknown flag bits", SIMGRAD_ERR_INVALID_ARGUMENT, 0x80000000u, (void)0);
  VJP_CASE("cotangent of the input `x` given as a seed", SIMGRAD_ERR_INVALID_ARGUMENT, 0,
           cin[1] = f64_array(c.dx, &c.shape[2]));
  VJP_CASE("input cotangent of rank 0", SIMGRAD_ERR_SHAPE, 0, cout[1].ndim = 0);
  VJP_CASE("input cotangent with non-contiguous strides", SIMGRAD_ERR_LAYOUT, 0,
           (c.shape[0] = 3, c.shape[1] = 3, cout[1].shape = &c.shape[0],
            cout[1].strides = &c.shape[1]));
  VJP_CASE("input cotangent is the seed", SIMGRAD_ERR_ALIAS, 0, cout[1].data = c.gy);
  VJP_CASE("NULL cotangent lists (all absent)", SIMGRAD_OK, 0, (cin_p = NULL, cout_p = NULL));
  VJP_CASE("gx = 2 gy, overwriting", SIMGRAD_OK, 0, (void)0);
  EXPECT(c.gx[0] == 0 && c.gx[1] == 2 && c.gx[2] == 4 && c.gy[1] == 1 && c.y[0] == 0);
  VJP_CASE("gx += 2 gy (SIMGRAD_VJP_ACCUMULATE)", SIMGRAD_OK, SIMGRAD_VJP_ACCUMULATE, (void)0);
  EXPECT(c.gx[0] == 100 && c.gx[1] == 2 && c.gx[2] == 4);
#undef VJP_CASE
}

static simgrad_build_options build_options(const char *cache) {
  simgrad_build_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = (uint32_t)sizeof o;
  o.cache_dir = cache;
  o.flags = SIMGRAD_BUILD_QUIET;
  return o;
}

static void building(const char *fx, const char *work, const char *cache, int enzyme) {
  char *good = project(work, "square", SQUARE_SPEC, "square.c", SQUARE_SRC);
  char *syntax = project(work, "syntax", "[build\nname = 1\n", NULL, NULL);
  char *no_source = project(work, "no_source", SQUARE_SPEC, NULL, NULL);
  char *bad_source =
      project(work, "bad_source", SQUARE_SPEC, "square.c", "void square(long n) { not C }\n");
  char *drift = project(work, "drift", DRIFT_SPEC, "drift.c", DRIFT_SRC);
  char *missing = join(work, "missing/simgrad.toml");
  char *not_a_dir = join(fx, "fixture.json");
  char *out_dir = join(work, "out");
  simgrad_build_options o = build_options(cache);
  static char sentinel;
  simgrad_library *lib = (simgrad_library *)(void *)&sentinel;
  char buf[4096];
  size_t needed = 0;

  CASE(simgrad_build, "NULL spec_path", SIMGRAD_ERR_NULL_ARGUMENT, (NULL, &o, &lib));
  CASE(simgrad_build, "NULL out", SIMGRAD_ERR_NULL_ARGUMENT, (good, &o, NULL));
  CASE(simgrad_build, "empty spec_path", SIMGRAD_ERR_INVALID_ARGUMENT, ("", &o, &lib));
  o.struct_size = 8;
  CASE(simgrad_build, "options->struct_size 8", SIMGRAD_ERR_INVALID_ARGUMENT, (good, &o, &lib));
  o = build_options(cache);
  o.flags = 64;
  CASE(simgrad_build, "unknown options->flags bits", SIMGRAD_ERR_INVALID_ARGUMENT,
       (good, &o, &lib));
  o = build_options(cache);
  o.pipeline = "\xff";
  CASE(simgrad_build, "options->pipeline not UTF-8", SIMGRAD_ERR_INVALID_ARGUMENT,
       (good, &o, &lib));
  o.pipeline = "no-such-pipeline";
  CASE(simgrad_build, "unknown pipeline", SIMGRAD_ERR_SPEC, (good, &o, &lib));
  o = build_options(cache);
  CASE(simgrad_build, "missing spec file", SIMGRAD_ERR_SPEC, (missing, &o, &lib));
  CASE(simgrad_build, "spec that is not TOML", SIMGRAD_ERR_SPEC, (syntax, &o, &lib));
  EXPECT(lib == (simgrad_library *)(void *)&sentinel);

  CASE(simgrad_build_path, "NULL buf with buf_len 16", SIMGRAD_ERR_NULL_ARGUMENT,
       (good, &o, NULL, 16, &needed));
  CASE(simgrad_build_path, "NULL spec_path", SIMGRAD_ERR_NULL_ARGUMENT,
       (NULL, &o, buf, sizeof buf, &needed));
  CASE(simgrad_build_path, "spec that is not TOML", SIMGRAD_ERR_SPEC,
       (syntax, &o, buf, sizeof buf, &needed));
  EXPECT(needed == 0);

  /* The Enzyme plugin named by the environment does not exist. */
  const char *old = getenv("SIMGRAD_ENZYME_PLUGIN");
  char *saved = old ? strdup(old) : NULL;
  char *no_plugin = join(work, "no-such-plugin.so");
  setenv("SIMGRAD_ENZYME_PLUGIN", no_plugin, 1);
  CASE(simgrad_build, "SIMGRAD_ENZYME_PLUGIN names a missing file", SIMGRAD_ERR_TOOLCHAIN,
       (good, &o, &lib));
  if (saved) {
    setenv("SIMGRAD_ENZYME_PLUGIN", saved, 1);
  } else {
    unsetenv("SIMGRAD_ENZYME_PLUGIN");
  }
  free(saved);
  free(no_plugin);

  if (!enzyme) {
    CASE(simgrad_build, "no Enzyme toolchain on this machine", SIMGRAD_ERR_TOOLCHAIN,
         (good, &o, &lib));
  } else {
  
    CASE(simgrad_build, "a source that does not compile", SIMGRAD_ERR_BUILD,
         (bad_source, &o, &lib));
    o.flags |= SIMGRAD_BUILD_VERIFY;
    CASE(simgrad_build, "SIMGRAD_BUILD_VERIFY, a kernel with a wrong derivative",
         SIMGRAD_ERR_VERIFY, (drift, &o, &lib));
    o = build_options(cache);
    o.out_dir = not_a_dir;
    CASE(simgrad_build, "options->out_dir is a file", SIMGRAD_ERR_IO, (good, &o, &lib));
    EXPECT(lib == (simgrad_library *)(void *)&sentinel);

    o = build_options(cache);
    needed = 0;
    CASE(simgrad_build_path, "NULL buf, buf_len 0 (asks for the size)",
         SIMGRAD_ERR_BUFFER_TOO_SMALL, (good, &o, NULL, 0, &needed));
    EXPECT(needed > 1 && needed < sizeof buf);
    size_t want = needed;
    memset(buf, 'x', sizeof buf);
    CASE(simgrad_build_path, "buf one byte too small", SIMGRAD_ERR_BUFFER_TOO_SMALL,
         (good, &o, buf, want - 1, &needed));
    EXPECT(needed == want && buf[0] == 'x');
    CASE(simgrad_build_path, "buf of exactly the size", SIMGRAD_OK, (good, &o, buf, want, NULL));
    EXPECT(strlen(buf) + 1 == want && strncmp(buf, cache, strlen(cache)) == 0);

    o.out_dir = out_dir;
    CASE(simgrad_build, "options->out_dir", SIMGRAD_OK, (good, &o, &lib));
    const char *path = "";
    simgrad_library_path(lib, &path);
    EXPECT(strncmp(path, out_dir, strlen(out_dir)) == 0);
    simgrad_library_free(lib);
    lib = NULL;

    CASE(simgrad_build, "default options (NULL)", SIMGRAD_OK, (good, NULL, &lib));
    simgrad_kernel *k = get_kernel(lib, "square");
    simgrad_library_free(lib);
    int64_t n = 3, shape[4] = {3, 3, 3, 3};
    double x[3] = {1, 2, 3}, y[3] = {0}, gy[3] = {1, 1, 1}, gx[3] = {0};
    simgrad_tensor args[3] = {i64_value(&n), f64_array(x, shape), f64_array(y, shape + 1)};
    CASE(simgrad_kernel_call, "a kernel built by Enzyme", SIMGRAD_OK, (k, args, 3));
    EXPECT(y[0] == 1 && y[1] == 4 && y[2] == 9);
    simgrad_tensor cin[3] = {absent(), absent(), f64_array(gy, shape + 2)};
    simgrad_tensor cout[3] = {absent(), f64_array(gx, shape + 3), absent()};
    CASE(simgrad_kernel_vjp, "a kernel built by Enzyme", SIMGRAD_OK, (k, args, 3, cin, cout, 0));
    EXPECT(gx[0] == 2 && gx[1] == 4 && gx[2] == 6);
    simgrad_kernel_free(k);
  }
  free(good);
  free(syntax);
  free(no_source);
  free(bad_source);
  free(drift);
  free(missing);
  free(not_a_dir);
  free(out_dir);
}

/* Fails unless ASan and UBSan are compiled in and ASan's runtime is live. */
static int sanitizers_live(void) {
#if defined(DRIVE_ALL_ASAN) && defined(DRIVE_ALL_UBSAN)
  /* The bytes after a 13-byte block are ASan's redzone, poisoned by its allocator. */
  volatile char *p = malloc(13);
  int live = p != NULL && !__asan_address_is_poisoned((const void *)p) &&
             __asan_address_is_poisoned((const void *)(p + 13));
  free((void *)p);
  if (!live) {
    fprintf(stderr, "drive_all: ASan is compiled in but its allocator does not poison\n");
  }
  return live;
#else
  fprintf(stderr, "drive_all: built without -fsanitize=address,undefined\n");
  return 0;
#endif
}

int main(int argc, char **argv) {
  int enzyme = 1, require_sanitizers = 0;
  if (argc < 4) {
    fprintf(stderr, "usage: %s FIXTURE_DIR WORK_DIR CACHE_DIR [--no-enzyme] "
                    "[--require-sanitizers]\n", argv[0]);
    return 2;
  }
  for (int i = 4; i < argc; i++) {
    if (strcmp(argv[i], "--no-enzyme") == 0) {
      enzyme = 0;
    } else if (strcmp(argv[i], "--require-sanitizers") == 0) {
      require_sanitizers = 1;
    } else {
      fprintf(stderr, "drive_all: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (require_sanitizers && !sanitizers_live()) {
    return 3;
  }
  const char *fx = argv[1], *work = argv[2], *cache = argv[3];

  versions_and_errors();
  simgrad_library *lib = opening(fx);
  if (!lib) {
    fprintf(stderr, "drive_all: cannot open the fixture library\n");
    return 1;
  }
  library_inspection(lib, fx);
  simgrad_kernel *scale = get_kernel(lib, "scale");
  simgrad_kernel *scal = get_kernel(lib, "scal");
  simgrad_kernel *fails = get_kernel(lib, "fails");
  /* Kernels keep the library loaded: free it first. */
  simgrad_library_free(lib);
  kernel_inspection(scal, fails);
  calls(scale, scal, fails);
  derivatives(scale, fails);
  simgrad_kernel_free(scale);
  simgrad_kernel_free(scal);
  simgrad_kernel_free(fails);
  simgrad_kernel_free(NULL);
  VALUE(simgrad_kernel_free, "NULL", 1, "does nothing");
  simgrad_library_free(NULL);
  VALUE(simgrad_library_free, "NULL", 1, "does nothing");

  building(fx, work, cache, enzyme);

  fprintf(stderr, "drive_all: %d cases, %d failed\n", cases, failures);
  return failures == 0 ? 0 : 1;
}
