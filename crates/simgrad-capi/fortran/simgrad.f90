!> Fortran bindings to libsimgrad, the C API declared in include/simgrad.h.
!>
!> Two layers, both public:
!>
!> * The raw layer mirrors simgrad.h one to one: every C function has a `bind(c)` interface of
!>   the same name and argument names, every struct a `bind(c)` derived type, every macro and
!>   status code a named constant. A test (examples-fortran/tests/test_fortran_bindings.py)
!>   parses the header and this file and fails when they disagree.
!> * The convenient layer: handle types `simgrad_library_t` and `simgrad_kernel_t` with type-bound
!>   procedures and `final` procedures that free them, and `simgrad_arg_t` argument descriptors
!>   made from ordinary Fortran arrays and scalars by `simgrad_arg(x)` / `simgrad_value(v)`:
!>
!>       type(simgrad_library_t) :: lib
!>       type(simgrad_kernel_t) :: k
!>       real(c_double), target :: kappa(n), u0(n, nb), u(n, nb)
!>       call lib%open("libdiffusion.so")
!>       call lib%kernel("advdiff", k)
!>       call k%call([simgrad_value(n), simgrad_value(nb), simgrad_value(steps), &
!>                    simgrad_value(dt), simgrad_value(dx), simgrad_value(vel), &
!>                    simgrad_arg(kappa), simgrad_arg(u0), simgrad_arg(u)])
!>
!> Conventions of the convenient layer:
!>
!> * Errors. Every fallible procedure takes an optional `status` (`integer(c_int32_t)`,
!>   `intent(out)`, one of the `SIMGRAD_OK`/`SIMGRAD_ERR_*` codes). When it is present the
!>   caller handles errors and `simgrad_last_error()` says what went wrong; when it is absent a
!>   failure prints the message to standard error and stops the program (`error stop`), like
!>   an `allocate` without `stat=`.
!> * Indices are 1-based (argument `i` of a kernel is the i-th entry of the argument list;
!>   `kernel_name(1)` is the first kernel), unlike the 0-based raw layer.
!> * Strings go to C as `trim(s)//c_null_char`: trailing blanks of a path are dropped.
!> * Arrays. `simgrad_arg(x)` records the address, shape and strides of `x` (rank 0 to 3;
!>   real(c_double), real(c_float), integer(c_int32_t), integer(c_int64_t)). `x` must have the
!>   TARGET attribute in the caller and stay alive, unmoved and unreallocated, until the call
!>   that uses the descriptor. The dummy is assumed-shape and deliberately not CONTIGUOUS: a
!>   CONTIGUOUS dummy would let the compiler pass a temporary copy of a strided section, and the
!>   recorded address would dangle. Instead the real strides are recorded and libsimgrad checks
!>   them: a Fortran kernel (memory order "F") accepts column-major contiguous arrays, and a
!>   strided section is refused with SIMGRAD_ERR_LAYOUT rather than silently copied.
!> * Scalars and sizes. `simgrad_value(v)` copies `v`; at call time it is converted to the dtype
!>   the kernel's manifest declares for that argument (integers to i32/i64, range-checked; reals
!>   to f32/f64), so `simgrad_value(100)` works for an i64 size. A copied value cannot receive a
!>   result: a differentiable scalar's cotangent (VJP) needs `simgrad_arg(variable)`.
!> * Derivative lists (`jvp`, `vjp`) have one entry per kernel argument, like the argument
!>   list; an entry that is `simgrad_none()` (the default value of `simgrad_arg_t`) is absent.
!>   The modes' semantics are libsimgrad's (docs/calling-convention.md): a JVP writes the output
!>   tangents, a VJP overwrites (or with `accumulate=.true.` adds to) the input cotangents, and
!>   neither modifies an argument or a seed.
!> * Handles. A `simgrad_library_t` or `simgrad_kernel_t` owns its C handle and frees it in its
!>   `final` procedure, in `free()`, or when it is passed as the `intent(out)` result of
!>   `open`/`build`/`kernel` again. Do not copy a handle with `=`: both copies would free the
!>   same C handle. Pass handles by reference. Compilers without complete finalization (gfortran
!>   before 13 does not finalize local variables at the end of their scope) leak, never
!>   double-free; call `free()` to be sure. A kernel handle keeps its library loaded, so the
!>   library handle may be freed first.
!> * Threads. libsimgrad's last error is per thread; the few errors this module raises itself
!>   (an ABI mismatch, a by-value entry where a result is written) are kept in module variables
!>   and are not.
!>
!> The compiled .mod file is specific to one compiler (and version): compile this source with the
!> program that uses it (CMake: the `simgrad::fortran` target of find_package(simgrad)).
module simgrad
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: error_unit
  implicit none
  private

  ! ------------------------------------------------------------------------------------------
  ! Constants of simgrad.h. SIMGRAD_VERSION and SIMGRAD_ABI_VERSION are named
  ! SIMGRAD_MODULE_VERSION and SIMGRAD_MODULE_ABI_VERSION here, because Fortran names are
  ! case-insensitive and the functions simgrad_version and simgrad_abi_version take the others.
  ! ------------------------------------------------------------------------------------------

  !> The version of simgrad.h this module was written against.
  integer(c_int32_t), parameter, public :: SIMGRAD_VERSION_MAJOR = 0
  integer(c_int32_t), parameter, public :: SIMGRAD_VERSION_MINOR = 1
  integer(c_int32_t), parameter, public :: SIMGRAD_VERSION_PATCH = 0
  character(len=*), parameter, public :: SIMGRAD_MODULE_VERSION = "0.1.0"
  !> The C ABI version this module was written against; `open` and `build` refuse a
  !> libsimgrad whose `simgrad_abi_version()` differs.
  integer(c_int32_t), parameter, public :: SIMGRAD_MODULE_ABI_VERSION = 1

  integer(c_int32_t), parameter, public :: SIMGRAD_BUILD_VERIFY = 1
  integer(c_int32_t), parameter, public :: SIMGRAD_BUILD_FORCE = 2
  integer(c_int32_t), parameter, public :: SIMGRAD_BUILD_QUIET = 4
  integer(c_int32_t), parameter, public :: SIMGRAD_MODE_PRIMAL = 0
  integer(c_int32_t), parameter, public :: SIMGRAD_MODE_JVP = 1
  integer(c_int32_t), parameter, public :: SIMGRAD_MODE_VJP = 2
  integer(c_int32_t), parameter, public :: SIMGRAD_ARG_ARRAY = 0
  integer(c_int32_t), parameter, public :: SIMGRAD_ARG_SIZE = 1
  integer(c_int32_t), parameter, public :: SIMGRAD_ARG_SCALAR = 2
  integer(c_int32_t), parameter, public :: SIMGRAD_INTENT_IN = 0
  integer(c_int32_t), parameter, public :: SIMGRAD_INTENT_OUT = 1
  integer(c_int32_t), parameter, public :: SIMGRAD_INTENT_INOUT = 2
  integer(c_int32_t), parameter, public :: SIMGRAD_ORDER_C = 0
  integer(c_int32_t), parameter, public :: SIMGRAD_ORDER_F = 1
  integer(c_int32_t), parameter, public :: SIMGRAD_VJP_ACCUMULATE = 1
  integer(c_int32_t), parameter, public :: SIMGRAD_DTYPE_CODE_INT = 0
  integer(c_int32_t), parameter, public :: SIMGRAD_DTYPE_CODE_FLOAT = 2
  integer(c_int32_t), parameter, public :: SIMGRAD_DEVICE_CPU = 1

  ! Status codes (enum simgrad_status, a uint32_t in C; never renumbered).
  integer(c_int32_t), parameter, public :: SIMGRAD_OK = 0
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_NULL_ARGUMENT = 1
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_INVALID_ARGUMENT = 2
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_DTYPE = 3
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_SHAPE = 4
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_LAYOUT = 5
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_ALIAS = 6
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_NOT_FOUND = 7
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_LIBRARY = 8
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_MANIFEST = 9
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_ABI_MISMATCH = 10
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_SPEC = 11
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_BUILD = 12
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_TOOLCHAIN = 13
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_VERIFY = 14
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_KERNEL = 15
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_IO = 16
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_PANIC = 17
  integer(c_int32_t), parameter, public :: SIMGRAD_ERR_BUFFER_TOO_SMALL = 18

  !> The highest array rank `simgrad_arg` accepts.
  integer, parameter, public :: SIMGRAD_MAX_RANK = 3

  ! ------------------------------------------------------------------------------------------
  ! The structs of simgrad.h. C's uint8_t/uint16_t/uint32_t are the signed Fortran kinds of the
  ! same size (Fortran has no unsigned integers); every value simgrad uses fits.
  ! ------------------------------------------------------------------------------------------

  !> DLPack's DLDataType: code (SIMGRAD_DTYPE_CODE_*), bits (32, 64), lanes (1).
  type, bind(c), public :: simgrad_dtype
    integer(c_int8_t) :: code = 0
    integer(c_int8_t) :: bits = 0
    integer(c_int16_t) :: lanes = 1
  end type simgrad_dtype

  !> DLPack's DLDevice; simgrad accepts SIMGRAD_DEVICE_CPU only.
  type, bind(c), public :: simgrad_device
    integer(c_int32_t) :: device_type = SIMGRAD_DEVICE_CPU
    integer(c_int32_t) :: device_id = 0
  end type simgrad_device

  !> One argument of a call, laid out like DLPack's DLTensor (48 bytes). `shape` and `strides`
  !> point to `ndim` int64 values; strides are in elements; a NULL `data` marks an absent entry
  !> of a derivative list.
  type, bind(c), public :: simgrad_tensor
    type(c_ptr) :: data = c_null_ptr
    type(simgrad_device) :: device = simgrad_device(SIMGRAD_DEVICE_CPU, 0)
    integer(c_int32_t) :: ndim = 0
    type(simgrad_dtype) :: dtype = simgrad_dtype(0_c_int8_t, 0_c_int8_t, 1_c_int16_t)
    type(c_ptr) :: shape = c_null_ptr
    type(c_ptr) :: strides = c_null_ptr
    integer(c_int64_t) :: byte_offset = 0
  end type simgrad_tensor

  !> What simgrad_kernel_arg_info reports; `name` is a C string owned by the kernel handle.
  type, bind(c), public :: simgrad_arg_info
    type(c_ptr) :: name = c_null_ptr
    integer(c_int32_t) :: kind = 0
    type(simgrad_dtype) :: dtype = simgrad_dtype(0_c_int8_t, 0_c_int8_t, 1_c_int16_t)
    integer(c_int32_t) :: intent = 0
    integer(c_int32_t) :: differentiable = 0
    integer(c_int32_t) :: ndim = 0
  end type simgrad_arg_info

  !> Options of simgrad_build; `struct_size` must be c_sizeof(options). The strings are C
  !> strings (c_null_ptr: the default).
  type, bind(c), public :: simgrad_build_options
    integer(c_int32_t) :: struct_size = 0
    type(c_ptr) :: out_dir = c_null_ptr
    type(c_ptr) :: cache_dir = c_null_ptr
    type(c_ptr) :: pipeline = c_null_ptr
    integer(c_int32_t) :: flags = 0
  end type simgrad_build_options

  ! ------------------------------------------------------------------------------------------
  ! The functions of simgrad.h, in header order. Nullable pointer parameters are OPTIONAL
  ! (an absent optional argument reaches C as NULL).
  !
  ! Tensor lists are `const simgrad_tensor *` in C but have no INTENT(IN) here, on purpose:
  ! gfortran turns INTENT(IN) into a promise to its optimiser that no pointer stored in the
  ! argument escapes and nothing reachable through it is written, while libsimgrad writes
  ! outputs, tangents and cotangents through the `data` pointers the descriptors hold. With the
  ! promise, gfortran -O2 -flto kept a scalar cotangent's old value in a register across the
  ! call. The same holds for every dummy of the convenient layer through which such a pointer
  ! travels (simgrad_arg's `x`, the argument lists of call/jvp/vjp).
  ! ------------------------------------------------------------------------------------------

  public :: simgrad_last_error_message, simgrad_build, simgrad_build_path
  public :: simgrad_kernel_free, simgrad_kernel_name, simgrad_kernel_arg_count
  public :: simgrad_kernel_arg_info, simgrad_kernel_has_mode, simgrad_kernel_memory_order
  public :: simgrad_kernel_call, simgrad_kernel_jvp, simgrad_kernel_vjp
  public :: simgrad_library_open, simgrad_library_open_with_manifest, simgrad_library_free
  public :: simgrad_library_manifest, simgrad_library_path, simgrad_library_kernel_count
  public :: simgrad_library_kernel_name, simgrad_library_kernel
  public :: simgrad_status_name, simgrad_version, simgrad_abi_version

  interface
    function simgrad_last_error_message() result(r) bind(c, name="simgrad_last_error_message")
      import :: c_ptr
      type(c_ptr) :: r
    end function simgrad_last_error_message

    function simgrad_build(spec_path, options, out) result(r) bind(c, name="simgrad_build")
      import :: c_char, c_ptr, c_int32_t, simgrad_build_options
      character(kind=c_char), dimension(*), intent(in) :: spec_path
      type(simgrad_build_options), intent(in), optional :: options
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_build

    function simgrad_build_path(spec_path, options, buf, buf_len, needed) result(r) &
        bind(c, name="simgrad_build_path")
      import :: c_char, c_size_t, c_int32_t, simgrad_build_options
      character(kind=c_char), dimension(*), intent(in) :: spec_path
      type(simgrad_build_options), intent(in), optional :: options
      character(kind=c_char), dimension(*), intent(inout), optional :: buf
      integer(c_size_t), value :: buf_len
      integer(c_size_t), intent(out), optional :: needed
      integer(c_int32_t) :: r
    end function simgrad_build_path

    subroutine simgrad_kernel_free(kernel) bind(c, name="simgrad_kernel_free")
      import :: c_ptr
      type(c_ptr), value :: kernel
    end subroutine simgrad_kernel_free

    function simgrad_kernel_name(kernel, out) result(r) bind(c, name="simgrad_kernel_name")
      import :: c_ptr, c_int32_t
      type(c_ptr), value :: kernel
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_kernel_name

    function simgrad_kernel_arg_count(kernel, out) result(r) &
        bind(c, name="simgrad_kernel_arg_count")
      import :: c_ptr, c_size_t, c_int32_t
      type(c_ptr), value :: kernel
      integer(c_size_t), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_kernel_arg_count

    function simgrad_kernel_arg_info(kernel, index, out) result(r) &
        bind(c, name="simgrad_kernel_arg_info")
      import :: c_ptr, c_size_t, c_int32_t, simgrad_arg_info
      type(c_ptr), value :: kernel
      integer(c_size_t), value :: index
      type(simgrad_arg_info), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_kernel_arg_info

    function simgrad_kernel_has_mode(kernel, mode, out) result(r) &
        bind(c, name="simgrad_kernel_has_mode")
      import :: c_ptr, c_int32_t
      type(c_ptr), value :: kernel
      integer(c_int32_t), value :: mode
      integer(c_int32_t), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_kernel_has_mode

    function simgrad_kernel_memory_order(kernel, out) result(r) &
        bind(c, name="simgrad_kernel_memory_order")
      import :: c_ptr, c_int32_t
      type(c_ptr), value :: kernel
      integer(c_int32_t), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_kernel_memory_order

    function simgrad_kernel_call(kernel, args, nargs) result(r) &
        bind(c, name="simgrad_kernel_call")
      import :: c_ptr, c_size_t, c_int32_t, simgrad_tensor
      type(c_ptr), value :: kernel
      type(simgrad_tensor), dimension(*) :: args
      integer(c_size_t), value :: nargs
      integer(c_int32_t) :: r
    end function simgrad_kernel_call

    function simgrad_kernel_jvp(kernel, args, nargs, tangents_in, tangents_out) result(r) &
        bind(c, name="simgrad_kernel_jvp")
      import :: c_ptr, c_size_t, c_int32_t, simgrad_tensor
      type(c_ptr), value :: kernel
      type(simgrad_tensor), dimension(*) :: args
      integer(c_size_t), value :: nargs
      type(simgrad_tensor), dimension(*), optional :: tangents_in
      type(simgrad_tensor), dimension(*), optional :: tangents_out
      integer(c_int32_t) :: r
    end function simgrad_kernel_jvp

    function simgrad_kernel_vjp(kernel, args, nargs, cotangents_in, cotangents_out, flags) &
        result(r) bind(c, name="simgrad_kernel_vjp")
      import :: c_ptr, c_size_t, c_int32_t, simgrad_tensor
      type(c_ptr), value :: kernel
      type(simgrad_tensor), dimension(*) :: args
      integer(c_size_t), value :: nargs
      type(simgrad_tensor), dimension(*), optional :: cotangents_in
      type(simgrad_tensor), dimension(*), optional :: cotangents_out
      integer(c_int32_t), value :: flags
      integer(c_int32_t) :: r
    end function simgrad_kernel_vjp

    function simgrad_library_open(path, out) result(r) bind(c, name="simgrad_library_open")
      import :: c_char, c_ptr, c_int32_t
      character(kind=c_char), dimension(*), intent(in) :: path
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_library_open

    function simgrad_library_open_with_manifest(path, manifest_path, out) result(r) &
        bind(c, name="simgrad_library_open_with_manifest")
      import :: c_char, c_ptr, c_int32_t
      character(kind=c_char), dimension(*), intent(in) :: path
      character(kind=c_char), dimension(*), intent(in) :: manifest_path
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_library_open_with_manifest

    subroutine simgrad_library_free(lib) bind(c, name="simgrad_library_free")
      import :: c_ptr
      type(c_ptr), value :: lib
    end subroutine simgrad_library_free

    function simgrad_library_manifest(lib, out_json) result(r) &
        bind(c, name="simgrad_library_manifest")
      import :: c_ptr, c_int32_t
      type(c_ptr), value :: lib
      type(c_ptr), intent(out) :: out_json
      integer(c_int32_t) :: r
    end function simgrad_library_manifest

    function simgrad_library_path(lib, out) result(r) bind(c, name="simgrad_library_path")
      import :: c_ptr, c_int32_t
      type(c_ptr), value :: lib
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_library_path

    function simgrad_library_kernel_count(lib, out) result(r) &
        bind(c, name="simgrad_library_kernel_count")
      import :: c_ptr, c_size_t, c_int32_t
      type(c_ptr), value :: lib
      integer(c_size_t), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_library_kernel_count

    function simgrad_library_kernel_name(lib, index, out) result(r) &
        bind(c, name="simgrad_library_kernel_name")
      import :: c_ptr, c_size_t, c_int32_t
      type(c_ptr), value :: lib
      integer(c_size_t), value :: index
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_library_kernel_name

    function simgrad_library_kernel(lib, name, out) result(r) &
        bind(c, name="simgrad_library_kernel")
      import :: c_char, c_ptr, c_int32_t
      type(c_ptr), value :: lib
      character(kind=c_char), dimension(*), intent(in) :: name
      type(c_ptr), intent(out) :: out
      integer(c_int32_t) :: r
    end function simgrad_library_kernel

    function simgrad_status_name(status) result(r) bind(c, name="simgrad_status_name")
      import :: c_ptr, c_int32_t
      integer(c_int32_t), value :: status
      type(c_ptr) :: r
    end function simgrad_status_name

    function simgrad_version() result(r) bind(c, name="simgrad_version")
      import :: c_ptr
      type(c_ptr) :: r
    end function simgrad_version

    function simgrad_abi_version() result(r) bind(c, name="simgrad_abi_version")
      import :: c_int32_t
      integer(c_int32_t) :: r
    end function simgrad_abi_version
  end interface

  ! The C library's strlen, to read the C strings simgrad returns.
  interface
    function c_strlen(s) result(n) bind(c, name="strlen")
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: n
    end function c_strlen
  end interface

  ! ------------------------------------------------------------------------------------------
  ! The convenient layer.
  ! ------------------------------------------------------------------------------------------

  !> An open kernel library. `ptr` is the C handle (for the raw layer); the type owns it.
  type, public :: simgrad_library_t
    type(c_ptr) :: ptr = c_null_ptr
  contains
    !> `call lib%open(path [, manifest] [, status])`: open a kernel library (with an external
    !> JSON manifest file when `manifest` is given).
    procedure :: open => library_open
    !> `call lib%build(spec_path [, out_dir, cache_dir, pipeline, flags] [, status])`: build the
    !> spec (or take it from the cache) and open the result.
    procedure :: build => library_build
    !> `call lib%kernel(name, k [, status])`: look up a kernel.
    procedure :: kernel => library_kernel
    !> `lib%manifest([status])`: the manifest JSON.
    procedure :: manifest => library_manifest
    !> `lib%path([status])`: the file the library was opened from.
    procedure :: path => library_path
    !> `lib%kernel_count([status])`.
    procedure :: kernel_count => library_kernel_count
    !> `lib%kernel_name(i [, status])`: the name of kernel i (1-based).
    procedure :: kernel_name => library_kernel_name
    !> `lib%is_open()`.
    procedure :: is_open => library_is_open
    !> `call lib%free()`: free the handle now (idempotent).
    procedure :: free => library_free_handle
    final :: library_finalize
  end type simgrad_library_t

  !> One kernel of a library. `ptr` is the C handle (for the raw layer); the type owns it.
  type, public :: simgrad_kernel_t
    type(c_ptr) :: ptr = c_null_ptr
    ! The dtype of every argument, from the manifest, to convert simgrad_value entries.
    integer(c_int8_t), allocatable, private :: codes(:), bits(:)
  contains
    !> `call k%call(args [, status])`: run the primal.
    procedure :: call => kernel_call
    !> `call k%jvp(args, tangents_in, tangents_out [, status])`: forward mode.
    procedure :: jvp => kernel_jvp
    !> `call k%vjp(args, cotangents_in, cotangents_out [, accumulate] [, status])`: reverse mode.
    procedure :: vjp => kernel_vjp
    !> `k%name([status])`.
    procedure :: name => kernel_name
    !> `k%arg_count([status])`: the length every argument list must have.
    procedure :: arg_count => kernel_arg_count
    !> `k%arg_info(i [, status])`: description of argument i (1-based), a simgrad_arg_desc_t.
    procedure :: arg_info => kernel_arg_info
    !> `k%has_mode(mode [, status])`: SIMGRAD_MODE_PRIMAL, _JVP or _VJP built?
    procedure :: has_mode => kernel_has_mode
    !> `k%memory_order([status])`: SIMGRAD_ORDER_C or SIMGRAD_ORDER_F.
    procedure :: memory_order => kernel_memory_order
    !> `k%is_open()`.
    procedure :: is_open => kernel_is_open
    !> `call k%free()`: free the handle now (idempotent).
    procedure :: free => kernel_free_handle
    final :: kernel_finalize
  end type simgrad_kernel_t

  !> One kernel argument as Fortran sees it (`k%arg_info(i)`).
  type, public :: simgrad_arg_desc_t
    character(len=:), allocatable :: name
    !> SIMGRAD_ARG_ARRAY, _SIZE or _SCALAR.
    integer(c_int32_t) :: kind = 0
    !> SIMGRAD_DTYPE_CODE_INT or _FLOAT, and the bits (32, 64).
    integer(c_int32_t) :: dtype_code = 0
    integer(c_int32_t) :: dtype_bits = 0
    !> SIMGRAD_INTENT_IN, _OUT or _INOUT.
    integer(c_int32_t) :: intent = 0
    logical :: differentiable = .false.
    integer(c_int32_t) :: ndim = 0
  end type simgrad_arg_desc_t

  !> One entry of an argument or derivative list. Make it with simgrad_arg (a reference to a
  !> variable), simgrad_value (a copy of a scalar) or simgrad_none (absent, the default).
  !> It owns no memory and may be copied freely.
  type, public :: simgrad_arg_t
    private
    type(c_ptr) :: data = c_null_ptr
    integer(c_int8_t) :: code = 0
    integer(c_int8_t) :: bits = 0
    integer(c_int32_t) :: ndim = 0
    integer(c_int64_t) :: shape(SIMGRAD_MAX_RANK) = 0
    integer(c_int64_t) :: strides(SIMGRAD_MAX_RANK) = 0
    ! 0: a reference (data); 1: a copied integer (ival); 2: a copied real (rval).
    integer :: by_value = 0
    integer(c_int64_t) :: ival = 0
    real(c_double) :: rval = 0
  end type simgrad_arg_t

  !> `simgrad_arg(x)`: a reference to the array or scalar variable `x` (TARGET in the caller).
  interface simgrad_arg
    module procedure arg_f64_0, arg_f64_1, arg_f64_2, arg_f64_3
    module procedure arg_f32_0, arg_f32_1, arg_f32_2, arg_f32_3
    module procedure arg_i64_0, arg_i64_1, arg_i64_2, arg_i64_3
    module procedure arg_i32_0, arg_i32_1, arg_i32_2, arg_i32_3
  end interface simgrad_arg

  !> `simgrad_value(v)`: a copy of the scalar `v`, converted at call time to the argument's dtype.
  interface simgrad_value
    module procedure value_f64, value_f32, value_i64, value_i32
  end interface simgrad_value

  public :: simgrad_arg, simgrad_value, simgrad_none
  public :: simgrad_last_error, simgrad_status_string, simgrad_version_string
  public :: simgrad_build_library_path

  ! The C descriptors of one list and the memory they point to (shapes, strides, copied
  ! scalars). A local TARGET variable of the calling procedure, so every pointer into it stays
  ! valid for the duration of the C call and no longer, which is all libsimgrad needs.
  type :: marshalled_t
    type(simgrad_tensor), allocatable :: t(:)
    integer(c_int64_t), allocatable :: dims(:, :, :)
    integer(c_int32_t), allocatable :: i32(:)
    integer(c_int64_t), allocatable :: i64(:)
    real(c_float), allocatable :: f32(:)
    real(c_double), allocatable :: f64(:)
  end type marshalled_t

  ! Where a zero-size array's descriptor points: never read, but not NULL (NULL means absent).
  integer(c_int64_t), target, save :: empty_anchor(1) = 0

  ! The last error raised by this module itself (not by libsimgrad), and whether it is newer
  ! than the last libsimgrad call.
  character(len=:), allocatable, save :: module_error
  logical, save :: module_error_set = .false.

contains

  ! ==========================================================================================
  ! Strings and errors
  ! ==========================================================================================

  !> A C string (NUL-terminated, owned by C) as a Fortran string; '' for NULL.
  function c_string(p) result(s)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: s
    character(kind=c_char), pointer :: chars(:)
    integer(c_size_t) :: n, i
    if (.not. c_associated(p)) then
      s = ''
      return
    end if
    n = c_strlen(p)
    call c_f_pointer(p, chars, [n])
    allocate (character(len=n) :: s)
    do i = 1, n
      s(i:i) = chars(i)
    end do
  end function c_string

  !> `s` as a NUL-terminated array for a C `const char *` kept in a struct.
  subroutine to_c_chars(s, buf)
    character(len=*), intent(in) :: s
    character(kind=c_char), allocatable, intent(out) :: buf(:)
    integer :: i, n
    n = len_trim(s)
    allocate (buf(n + 1))
    do i = 1, n
      buf(i) = s(i:i)
    end do
    buf(n + 1) = c_null_char
  end subroutine to_c_chars

  !> The message of the last failed simgrad call on this thread ('' after a success).
  function simgrad_last_error() result(msg)
    character(len=:), allocatable :: msg
    if (module_error_set) then
      msg = module_error
    else
      msg = c_string(simgrad_last_error_message())
    end if
  end function simgrad_last_error

  !> The name of a status code ("SIMGRAD_ERR_SHAPE" for 4).
  function simgrad_status_string(code) result(name)
    integer(c_int32_t), intent(in) :: code
    character(len=:), allocatable :: name
    name = c_string(simgrad_status_name(code))
  end function simgrad_status_string

  !> The version of the libsimgrad the program runs against ("0.1.0").
  function simgrad_version_string() result(v)
    character(len=:), allocatable :: v
    v = c_string(simgrad_version())
  end function simgrad_version_string

  ! Every convenient procedure starts with this: a module error is only reported by
  ! simgrad_last_error until the next call.
  subroutine begin()
    module_error_set = .false.
  end subroutine begin

  ! Records an error raised by this module.
  subroutine raise(code, message, st)
    integer(c_int32_t), intent(in) :: code
    character(len=*), intent(in) :: message
    integer(c_int32_t), intent(out) :: st
    module_error = message
    module_error_set = .true.
    st = code
  end subroutine raise

  ! Hands `code` to the caller's `status`, or stops the program when the caller passed none.
  subroutine finish(code, what, status)
    integer(c_int32_t), intent(in) :: code
    character(len=*), intent(in) :: what
    integer(c_int32_t), intent(out), optional :: status
    if (present(status)) then
      status = code
    else if (code /= SIMGRAD_OK) then
      write (error_unit, '(a)') 'simgrad: ' // what // ' failed with ' // &
        simgrad_status_string(code) // ': ' // simgrad_last_error()
      error stop 'simgrad: unhandled error (pass status= to handle it)'
    end if
  end subroutine finish

  ! SIMGRAD_OK when the loaded libsimgrad speaks the ABI this module was written for.
  function check_abi() result(st)
    integer(c_int32_t) :: st
    character(len=16) :: got, want
    st = SIMGRAD_OK
    if (simgrad_abi_version() /= SIMGRAD_MODULE_ABI_VERSION) then
      write (got, '(i0)') simgrad_abi_version()
      write (want, '(i0)') SIMGRAD_MODULE_ABI_VERSION
      call raise(SIMGRAD_ERR_ABI_MISMATCH, 'the loaded libsimgrad has C ABI version ' // &
        trim(got) // ' but the simgrad Fortran module was written for version ' // &
        trim(want) // '; use the module source installed with that libsimgrad', st)
    end if
  end function check_abi

  ! ==========================================================================================
  ! Libraries
  ! ==========================================================================================

  subroutine library_open(self, path, manifest, status)
    class(simgrad_library_t), intent(inout) :: self
    character(len=*), intent(in) :: path
    character(len=*), intent(in), optional :: manifest
    integer(c_int32_t), intent(out), optional :: status
    integer(c_int32_t) :: st
    type(c_ptr) :: p
    call begin()
    call self%free()
    st = check_abi()
    if (st == SIMGRAD_OK) then
      if (present(manifest)) then
        st = simgrad_library_open_with_manifest(trim(path) // c_null_char, &
          trim(manifest) // c_null_char, p)
      else
        st = simgrad_library_open(trim(path) // c_null_char, p)
      end if
      if (st == SIMGRAD_OK) self%ptr = p
    end if
    call finish(st, 'opening ' // trim(path), status)
  end subroutine library_open

  subroutine library_build(self, spec_path, out_dir, cache_dir, pipeline, flags, status)
    class(simgrad_library_t), intent(inout) :: self
    character(len=*), intent(in) :: spec_path
    character(len=*), intent(in), optional :: out_dir, cache_dir, pipeline
    integer(c_int32_t), intent(in), optional :: flags
    integer(c_int32_t), intent(out), optional :: status
    type(simgrad_build_options), target :: opts
    character(kind=c_char), allocatable, target :: out_dir_c(:), cache_dir_c(:), pipeline_c(:)
    integer(c_int32_t) :: st
    type(c_ptr) :: p
    call begin()
    call self%free()
    opts%struct_size = int(c_sizeof(opts), c_int32_t)
    if (present(out_dir)) then
      call to_c_chars(out_dir, out_dir_c)
      opts%out_dir = c_loc(out_dir_c)
    end if
    if (present(cache_dir)) then
      call to_c_chars(cache_dir, cache_dir_c)
      opts%cache_dir = c_loc(cache_dir_c)
    end if
    if (present(pipeline)) then
      call to_c_chars(pipeline, pipeline_c)
      opts%pipeline = c_loc(pipeline_c)
    end if
    if (present(flags)) opts%flags = flags
    st = check_abi()
    if (st == SIMGRAD_OK) then
      st = simgrad_build(trim(spec_path) // c_null_char, opts, p)
      if (st == SIMGRAD_OK) self%ptr = p
    end if
    call finish(st, 'building ' // trim(spec_path), status)
  end subroutine library_build

  !> Builds `spec_path` like `lib%build` but only returns the path of the built library.
  subroutine simgrad_build_library_path(spec_path, path, out_dir, cache_dir, pipeline, flags, &
      status)
    character(len=*), intent(in) :: spec_path
    character(len=:), allocatable, intent(out) :: path
    character(len=*), intent(in), optional :: out_dir, cache_dir, pipeline
    integer(c_int32_t), intent(in), optional :: flags
    integer(c_int32_t), intent(out), optional :: status
    type(simgrad_build_options), target :: opts
    character(kind=c_char), allocatable, target :: out_dir_c(:), cache_dir_c(:), pipeline_c(:)
    character(kind=c_char), allocatable :: buf(:)
    integer(c_size_t) :: needed
    integer(c_int32_t) :: st
    integer :: i
    call begin()
    path = ''
    opts%struct_size = int(c_sizeof(opts), c_int32_t)
    if (present(out_dir)) then
      call to_c_chars(out_dir, out_dir_c)
      opts%out_dir = c_loc(out_dir_c)
    end if
    if (present(cache_dir)) then
      call to_c_chars(cache_dir, cache_dir_c)
      opts%cache_dir = c_loc(cache_dir_c)
    end if
    if (present(pipeline)) then
      call to_c_chars(pipeline, pipeline_c)
      opts%pipeline = c_loc(pipeline_c)
    end if
    if (present(flags)) opts%flags = flags
    ! First ask for the size (this builds), then fetch the path (a cache hit).
    st = simgrad_build_path(trim(spec_path) // c_null_char, opts, buf_len=0_c_size_t, &
      needed=needed)
    if (st == SIMGRAD_ERR_BUFFER_TOO_SMALL .or. st == SIMGRAD_OK) then
      allocate (buf(max(needed, 1_c_size_t)))
      st = simgrad_build_path(trim(spec_path) // c_null_char, opts, buf, &
        int(size(buf), c_size_t), needed)
    end if
    if (st == SIMGRAD_OK) then
      deallocate (path)
      allocate (character(len=int(needed) - 1) :: path)
      do i = 1, int(needed) - 1
        path(i:i) = buf(i)
      end do
    end if
    call finish(st, 'building ' // trim(spec_path), status)
  end subroutine simgrad_build_library_path

  subroutine library_kernel(self, name, kernel, status)
    class(simgrad_library_t), intent(in) :: self
    character(len=*), intent(in) :: name
    type(simgrad_kernel_t), intent(out) :: kernel
    integer(c_int32_t), intent(out), optional :: status
    integer(c_int32_t) :: st
    type(c_ptr) :: p
    integer(c_size_t) :: n, i
    type(simgrad_arg_info) :: info
    call begin()
    st = simgrad_library_kernel(self%ptr, trim(name) // c_null_char, p)
    if (st == SIMGRAD_OK) then
      kernel%ptr = p
      st = simgrad_kernel_arg_count(p, n)
      if (st == SIMGRAD_OK) then
        allocate (kernel%codes(n), kernel%bits(n))
        do i = 1, n
          st = simgrad_kernel_arg_info(p, i - 1, info)
          if (st /= SIMGRAD_OK) exit
          kernel%codes(i) = info%dtype%code
          kernel%bits(i) = info%dtype%bits
        end do
      end if
      if (st /= SIMGRAD_OK) call kernel%free()
    end if
    call finish(st, 'looking up kernel ' // trim(name), status)
  end subroutine library_kernel

  function library_manifest(self, status) result(json)
    class(simgrad_library_t), intent(in) :: self
    integer(c_int32_t), intent(out), optional :: status
    character(len=:), allocatable :: json
    type(c_ptr) :: p
    integer(c_int32_t) :: st
    call begin()
    st = simgrad_library_manifest(self%ptr, p)
    json = ''
    if (st == SIMGRAD_OK) json = c_string(p)
    call finish(st, 'reading the manifest', status)
  end function library_manifest

  function library_path(self, status) result(path)
    class(simgrad_library_t), intent(in) :: self
    integer(c_int32_t), intent(out), optional :: status
    character(len=:), allocatable :: path
    type(c_ptr) :: p
    integer(c_int32_t) :: st
    call begin()
    st = simgrad_library_path(self%ptr, p)
    path = ''
    if (st == SIMGRAD_OK) path = c_string(p)
    call finish(st, 'reading the library path', status)
  end function library_path

  function library_kernel_count(self, status) result(n)
    class(simgrad_library_t), intent(in) :: self
    integer(c_int32_t), intent(out), optional :: status
    integer :: n
    integer(c_size_t) :: c
    integer(c_int32_t) :: st
    call begin()
    c = 0
    st = simgrad_library_kernel_count(self%ptr, c)
    n = int(c)
    call finish(st, 'counting kernels', status)
  end function library_kernel_count

  function library_kernel_name(self, i, status) result(name)
    class(simgrad_library_t), intent(in) :: self
    integer, intent(in) :: i
    integer(c_int32_t), intent(out), optional :: status
    character(len=:), allocatable :: name
    type(c_ptr) :: p
    integer(c_int32_t) :: st
    call begin()
    name = ''
    if (i < 1) then
      call raise(SIMGRAD_ERR_NOT_FOUND, 'kernel index must be at least 1 (indices are 1-based)', st)
    else
      st = simgrad_library_kernel_name(self%ptr, int(i - 1, c_size_t), p)
      if (st == SIMGRAD_OK) name = c_string(p)
    end if
    call finish(st, 'reading a kernel name', status)
  end function library_kernel_name

  logical function library_is_open(self)
    class(simgrad_library_t), intent(in) :: self
    library_is_open = c_associated(self%ptr)
  end function library_is_open

  subroutine library_free_handle(self)
    class(simgrad_library_t), intent(inout) :: self
    call simgrad_library_free(self%ptr)
    self%ptr = c_null_ptr
  end subroutine library_free_handle

  subroutine library_finalize(self)
    type(simgrad_library_t), intent(inout) :: self
    call simgrad_library_free(self%ptr)
    self%ptr = c_null_ptr
  end subroutine library_finalize

  ! ==========================================================================================
  ! Kernels: inspection
  ! ==========================================================================================

  function kernel_name(self, status) result(name)
    class(simgrad_kernel_t), intent(in) :: self
    integer(c_int32_t), intent(out), optional :: status
    character(len=:), allocatable :: name
    type(c_ptr) :: p
    integer(c_int32_t) :: st
    call begin()
    st = simgrad_kernel_name(self%ptr, p)
    name = ''
    if (st == SIMGRAD_OK) name = c_string(p)
    call finish(st, 'reading the kernel name', status)
  end function kernel_name

  function kernel_arg_count(self, status) result(n)
    class(simgrad_kernel_t), intent(in) :: self
    integer(c_int32_t), intent(out), optional :: status
    integer :: n
    integer(c_size_t) :: c
    integer(c_int32_t) :: st
    call begin()
    c = 0
    st = simgrad_kernel_arg_count(self%ptr, c)
    n = int(c)
    call finish(st, 'counting kernel arguments', status)
  end function kernel_arg_count

  function kernel_arg_info(self, i, status) result(desc)
    class(simgrad_kernel_t), intent(in) :: self
    integer, intent(in) :: i
    integer(c_int32_t), intent(out), optional :: status
    type(simgrad_arg_desc_t) :: desc
    type(simgrad_arg_info) :: info
    integer(c_int32_t) :: st
    call begin()
    desc%name = ''
    if (i < 1) then
      call raise(SIMGRAD_ERR_NOT_FOUND, 'argument index must be at least 1 (indices are 1-based)', &
        st)
    else
      st = simgrad_kernel_arg_info(self%ptr, int(i - 1, c_size_t), info)
      if (st == SIMGRAD_OK) then
        desc%name = c_string(info%name)
        desc%kind = info%kind
        desc%dtype_code = int(info%dtype%code, c_int32_t)
        desc%dtype_bits = int(info%dtype%bits, c_int32_t)
        desc%intent = info%intent
        desc%differentiable = info%differentiable /= 0
        desc%ndim = info%ndim
      end if
    end if
    call finish(st, 'reading argument information', status)
  end function kernel_arg_info

  logical function kernel_has_mode(self, mode, status)
    class(simgrad_kernel_t), intent(in) :: self
    integer(c_int32_t), intent(in) :: mode
    integer(c_int32_t), intent(out), optional :: status
    integer(c_int32_t) :: st, out
    call begin()
    out = 0
    st = simgrad_kernel_has_mode(self%ptr, mode, out)
    kernel_has_mode = out /= 0
    call finish(st, 'asking for a mode', status)
  end function kernel_has_mode

  function kernel_memory_order(self, status) result(order)
    class(simgrad_kernel_t), intent(in) :: self
    integer(c_int32_t), intent(out), optional :: status
    integer(c_int32_t) :: order, st
    call begin()
    order = -1
    st = simgrad_kernel_memory_order(self%ptr, order)
    call finish(st, 'asking for the memory order', status)
  end function kernel_memory_order

  logical function kernel_is_open(self)
    class(simgrad_kernel_t), intent(in) :: self
    kernel_is_open = c_associated(self%ptr)
  end function kernel_is_open

  subroutine kernel_free_handle(self)
    class(simgrad_kernel_t), intent(inout) :: self
    call simgrad_kernel_free(self%ptr)
    self%ptr = c_null_ptr
    if (allocated(self%codes)) deallocate (self%codes)
    if (allocated(self%bits)) deallocate (self%bits)
  end subroutine kernel_free_handle

  subroutine kernel_finalize(self)
    type(simgrad_kernel_t), intent(inout) :: self
    call simgrad_kernel_free(self%ptr)
    self%ptr = c_null_ptr
  end subroutine kernel_finalize

  ! ==========================================================================================
  ! Kernels: calls
  ! ==========================================================================================

  ! Fills m%t from `list`. `list_name` and `written` (libsimgrad writes into this list) are for
  ! the checks this module does itself.
  subroutine marshal(self, list, list_name, written, m, st)
    class(simgrad_kernel_t), intent(in) :: self
    type(simgrad_arg_t) :: list(:)
    character(len=*), intent(in) :: list_name
    logical, intent(in) :: written
    type(marshalled_t), target, intent(inout) :: m
    integer(c_int32_t), intent(out) :: st
    integer :: i, n, r
    integer(c_int8_t) :: code, bits
    character(len=16) :: pos
    st = SIMGRAD_OK
    n = size(list)
    allocate (m%t(max(n, 1)), m%dims(SIMGRAD_MAX_RANK, 2, max(n, 1)))
    allocate (m%i32(max(n, 1)), m%i64(max(n, 1)), m%f32(max(n, 1)), m%f64(max(n, 1)))
    do i = 1, n
      associate (a => list(i), t => m%t(i))
        t%ndim = a%ndim
        t%dtype%code = a%code
        t%dtype%bits = a%bits
        t%dtype%lanes = 1_c_int16_t
        if (a%by_value == 0) then
          t%data = a%data
          r = a%ndim
          if (r > 0) then
            m%dims(1:r, 1, i) = a%shape(1:r)
            m%dims(1:r, 2, i) = a%strides(1:r)
            t%shape = c_loc(m%dims(1, 1, i))
            t%strides = c_loc(m%dims(1, 2, i))
          end if
          cycle
        end if
        write (pos, '(i0)') i
        if (written) then
          call raise(SIMGRAD_ERR_INVALID_ARGUMENT, trim(list_name) // '(' // trim(pos) // &
            ') is a copied value (simgrad_value) but receives a result; pass a variable ' // &
            'with simgrad_arg', st)
          return
        end if
        ! A copied scalar becomes the dtype the manifest declares, when the conversion is
        ! meaningful; otherwise its own dtype, and libsimgrad reports the mismatch.
        code = a%code
        bits = a%bits
        if (allocated(self%codes)) then
          if (i <= size(self%codes)) then
            if (self%codes(i) == a%code .or. (a%by_value == 1 .and. &
                self%codes(i) == SIMGRAD_DTYPE_CODE_FLOAT)) then
              code = self%codes(i)
              bits = self%bits(i)
            end if
          end if
        end if
        t%dtype%code = code
        t%dtype%bits = bits
        if (code == SIMGRAD_DTYPE_CODE_INT .and. bits == 32) then
          if (a%ival < -huge(0_c_int32_t) - 1_c_int64_t .or. a%ival > huge(0_c_int32_t)) then
            call raise(SIMGRAD_ERR_INVALID_ARGUMENT, trim(list_name) // '(' // trim(pos) // &
              ') does not fit the 32-bit integer the kernel takes', st)
            return
          end if
          m%i32(i) = int(a%ival, c_int32_t)
          t%data = c_loc(m%i32(i))
        else if (code == SIMGRAD_DTYPE_CODE_INT) then
          m%i64(i) = a%ival
          t%data = c_loc(m%i64(i))
        else if (bits == 32) then
          if (a%by_value == 1) then
            m%f32(i) = real(a%ival, c_float)
          else
            m%f32(i) = real(a%rval, c_float)
          end if
          t%data = c_loc(m%f32(i))
        else
          if (a%by_value == 1) then
            m%f64(i) = real(a%ival, c_double)
          else
            m%f64(i) = a%rval
          end if
          t%data = c_loc(m%f64(i))
        end if
      end associate
    end do
  end subroutine marshal

  subroutine kernel_call(self, args, status)
    class(simgrad_kernel_t), intent(in) :: self
    type(simgrad_arg_t) :: args(:)
    integer(c_int32_t), intent(out), optional :: status
    type(marshalled_t), target :: ma
    integer(c_int32_t) :: st
    call begin()
    call marshal(self, args, 'args', .false., ma, st)
    if (st == SIMGRAD_OK) st = simgrad_kernel_call(self%ptr, ma%t, int(size(args), c_size_t))
    call finish(st, 'calling the kernel', status)
  end subroutine kernel_call

  subroutine kernel_jvp(self, args, tangents_in, tangents_out, status)
    class(simgrad_kernel_t), intent(in) :: self
    type(simgrad_arg_t) :: args(:), tangents_in(:), tangents_out(:)
    integer(c_int32_t), intent(out), optional :: status
    type(marshalled_t), target :: ma, mi, mo
    integer(c_int32_t) :: st
    call begin()
    st = same_length(size(args), size(tangents_in), size(tangents_out), 'tangents')
    if (st == SIMGRAD_OK) call marshal(self, args, 'args', .false., ma, st)
    if (st == SIMGRAD_OK) call marshal(self, tangents_in, 'tangents_in', .false., mi, st)
    if (st == SIMGRAD_OK) call marshal(self, tangents_out, 'tangents_out', .true., mo, st)
    if (st == SIMGRAD_OK) st = simgrad_kernel_jvp(self%ptr, ma%t, int(size(args), c_size_t), &
      mi%t, mo%t)
    call finish(st, 'forward mode (JVP)', status)
  end subroutine kernel_jvp

  subroutine kernel_vjp(self, args, cotangents_in, cotangents_out, accumulate, status)
    class(simgrad_kernel_t), intent(in) :: self
    type(simgrad_arg_t) :: args(:), cotangents_in(:), cotangents_out(:)
    logical, intent(in), optional :: accumulate
    integer(c_int32_t), intent(out), optional :: status
    type(marshalled_t), target :: ma, mi, mo
    integer(c_int32_t) :: st, flags
    call begin()
    flags = 0
    if (present(accumulate)) then
      if (accumulate) flags = SIMGRAD_VJP_ACCUMULATE
    end if
    st = same_length(size(args), size(cotangents_in), size(cotangents_out), 'cotangents')
    if (st == SIMGRAD_OK) call marshal(self, args, 'args', .false., ma, st)
    if (st == SIMGRAD_OK) call marshal(self, cotangents_in, 'cotangents_in', .false., mi, st)
    if (st == SIMGRAD_OK) call marshal(self, cotangents_out, 'cotangents_out', .true., mo, st)
    if (st == SIMGRAD_OK) st = simgrad_kernel_vjp(self%ptr, ma%t, int(size(args), c_size_t), &
      mi%t, mo%t, flags)
    call finish(st, 'reverse mode (VJP)', status)
  end subroutine kernel_vjp

  ! The C API reads `nargs` entries of every list, so all three must have the same length.
  function same_length(na, ni, no, what) result(st)
    integer, intent(in) :: na, ni, no
    character(len=*), intent(in) :: what
    integer(c_int32_t) :: st
    character(len=48) :: sizes
    st = SIMGRAD_OK
    if (ni /= na .or. no /= na) then
      write (sizes, '(3(i0,1x))') na, ni, no
      call raise(SIMGRAD_ERR_INVALID_ARGUMENT, 'the argument list and both ' // what // &
        ' lists must have one entry per kernel argument; their lengths are ' // trim(sizes), st)
    end if
  end function same_length

  ! ==========================================================================================
  ! Argument descriptors
  ! ==========================================================================================

  !> An absent entry of a derivative list.
  function simgrad_none() result(a)
    type(simgrad_arg_t) :: a
    a = simgrad_arg_t()
  end function simgrad_none

  ! The integer value of an address, to compute strides.
  function address(p) result(v)
    type(c_ptr) :: p
    integer(c_intptr_t) :: v
    v = transfer(p, v)
  end function address

  ! A reference descriptor: dtype, rank, shape; strides in elements from the addresses of the
  ! first element (first) and of the element one step along each dim (next(d), when that dim
  ! has at least two elements).
  function array_ref(code, bits, shp, first, next) result(a)
    integer(c_int32_t), intent(in) :: code, bits
    integer, intent(in) :: shp(:)
    type(c_ptr) :: first, next(:)
    type(simgrad_arg_t) :: a
    integer :: d, r
    integer(c_int64_t) :: compact
    r = size(shp)
    a%code = int(code, c_int8_t)
    a%bits = int(bits, c_int8_t)
    a%ndim = r
    a%shape(1:r) = shp
    if (any(shp == 0)) then
      a%data = c_loc(empty_anchor)
    else
      a%data = first
    end if
    compact = 1
    do d = 1, r
      if (shp(d) > 1 .and. c_associated(next(d))) then
        a%strides(d) = (address(next(d)) - address(first)) / (bits / 8)
      else
        ! A dim of extent 0 or 1 has no step; give the compact column-major one.
        a%strides(d) = compact
      end if
      compact = compact * max(shp(d), 1)
    end do
  end function array_ref

  function scalar_ref(code, bits, p) result(a)
    integer(c_int32_t), intent(in) :: code, bits
    type(c_ptr) :: p
    type(simgrad_arg_t) :: a
    a%code = int(code, c_int8_t)
    a%bits = int(bits, c_int8_t)
    a%ndim = 0
    a%data = p
  end function scalar_ref

  ! simgrad_arg for each type and rank (Fortran has no generic element address). The dummies
  ! have TARGET and deliberately no INTENT: gfortran (12 at least) treats the address of an
  ! INTENT(IN) argument as not escaping the call and keeps the variable's value in a register
  ! across later calls, so a result libsimgrad writes through the recorded pointer (a scalar
  ! cotangent) would be missed. Nothing here modifies `x`.

  function arg_f64_0(x) result(a)
    real(c_double), target :: x
    type(simgrad_arg_t) :: a
    a = scalar_ref(SIMGRAD_DTYPE_CODE_FLOAT, 64, c_loc(x))
  end function arg_f64_0

  function arg_f64_1(x) result(a)
    real(c_double), target :: x(:)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(1)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) first = c_loc(x(1))
    if (size(x, 1) > 1) next(1) = c_loc(x(2))
    a = array_ref(SIMGRAD_DTYPE_CODE_FLOAT, 64, shape(x), first, next)
  end function arg_f64_1

  function arg_f64_2(x) result(a)
    real(c_double), target :: x(:, :)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(2)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) then
      first = c_loc(x(1, 1))
      if (size(x, 1) > 1) next(1) = c_loc(x(2, 1))
      if (size(x, 2) > 1) next(2) = c_loc(x(1, 2))
    end if
    a = array_ref(SIMGRAD_DTYPE_CODE_FLOAT, 64, shape(x), first, next)
  end function arg_f64_2

  function arg_f64_3(x) result(a)
    real(c_double), target :: x(:, :, :)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(3)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) then
      first = c_loc(x(1, 1, 1))
      if (size(x, 1) > 1) next(1) = c_loc(x(2, 1, 1))
      if (size(x, 2) > 1) next(2) = c_loc(x(1, 2, 1))
      if (size(x, 3) > 1) next(3) = c_loc(x(1, 1, 2))
    end if
    a = array_ref(SIMGRAD_DTYPE_CODE_FLOAT, 64, shape(x), first, next)
  end function arg_f64_3

  function arg_f32_0(x) result(a)
    real(c_float), target :: x
    type(simgrad_arg_t) :: a
    a = scalar_ref(SIMGRAD_DTYPE_CODE_FLOAT, 32, c_loc(x))
  end function arg_f32_0

  function arg_f32_1(x) result(a)
    real(c_float), target :: x(:)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(1)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) first = c_loc(x(1))
    if (size(x, 1) > 1) next(1) = c_loc(x(2))
    a = array_ref(SIMGRAD_DTYPE_CODE_FLOAT, 32, shape(x), first, next)
  end function arg_f32_1

  function arg_f32_2(x) result(a)
    real(c_float), target :: x(:, :)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(2)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) then
      first = c_loc(x(1, 1))
      if (size(x, 1) > 1) next(1) = c_loc(x(2, 1))
      if (size(x, 2) > 1) next(2) = c_loc(x(1, 2))
    end if
    a = array_ref(SIMGRAD_DTYPE_CODE_FLOAT, 32, shape(x), first, next)
  end function arg_f32_2

  function arg_f32_3(x) result(a)
    real(c_float), target :: x(:, :, :)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(3)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) then
      first = c_loc(x(1, 1, 1))
      if (size(x, 1) > 1) next(1) = c_loc(x(2, 1, 1))
      if (size(x, 2) > 1) next(2) = c_loc(x(1, 2, 1))
      if (size(x, 3) > 1) next(3) = c_loc(x(1, 1, 2))
    end if
    a = array_ref(SIMGRAD_DTYPE_CODE_FLOAT, 32, shape(x), first, next)
  end function arg_f32_3

  function arg_i64_0(x) result(a)
    integer(c_int64_t), target :: x
    type(simgrad_arg_t) :: a
    a = scalar_ref(SIMGRAD_DTYPE_CODE_INT, 64, c_loc(x))
  end function arg_i64_0

  function arg_i64_1(x) result(a)
    integer(c_int64_t), target :: x(:)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(1)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) first = c_loc(x(1))
    if (size(x, 1) > 1) next(1) = c_loc(x(2))
    a = array_ref(SIMGRAD_DTYPE_CODE_INT, 64, shape(x), first, next)
  end function arg_i64_1

  function arg_i64_2(x) result(a)
    integer(c_int64_t), target :: x(:, :)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(2)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) then
      first = c_loc(x(1, 1))
      if (size(x, 1) > 1) next(1) = c_loc(x(2, 1))
      if (size(x, 2) > 1) next(2) = c_loc(x(1, 2))
    end if
    a = array_ref(SIMGRAD_DTYPE_CODE_INT, 64, shape(x), first, next)
  end function arg_i64_2

  function arg_i64_3(x) result(a)
    integer(c_int64_t), target :: x(:, :, :)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(3)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) then
      first = c_loc(x(1, 1, 1))
      if (size(x, 1) > 1) next(1) = c_loc(x(2, 1, 1))
      if (size(x, 2) > 1) next(2) = c_loc(x(1, 2, 1))
      if (size(x, 3) > 1) next(3) = c_loc(x(1, 1, 2))
    end if
    a = array_ref(SIMGRAD_DTYPE_CODE_INT, 64, shape(x), first, next)
  end function arg_i64_3

  function arg_i32_0(x) result(a)
    integer(c_int32_t), target :: x
    type(simgrad_arg_t) :: a
    a = scalar_ref(SIMGRAD_DTYPE_CODE_INT, 32, c_loc(x))
  end function arg_i32_0

  function arg_i32_1(x) result(a)
    integer(c_int32_t), target :: x(:)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(1)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) first = c_loc(x(1))
    if (size(x, 1) > 1) next(1) = c_loc(x(2))
    a = array_ref(SIMGRAD_DTYPE_CODE_INT, 32, shape(x), first, next)
  end function arg_i32_1

  function arg_i32_2(x) result(a)
    integer(c_int32_t), target :: x(:, :)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(2)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) then
      first = c_loc(x(1, 1))
      if (size(x, 1) > 1) next(1) = c_loc(x(2, 1))
      if (size(x, 2) > 1) next(2) = c_loc(x(1, 2))
    end if
    a = array_ref(SIMGRAD_DTYPE_CODE_INT, 32, shape(x), first, next)
  end function arg_i32_2

  function arg_i32_3(x) result(a)
    integer(c_int32_t), target :: x(:, :, :)
    type(simgrad_arg_t) :: a
    type(c_ptr) :: first, next(3)
    first = c_null_ptr
    next = c_null_ptr
    if (size(x) > 0) then
      first = c_loc(x(1, 1, 1))
      if (size(x, 1) > 1) next(1) = c_loc(x(2, 1, 1))
      if (size(x, 2) > 1) next(2) = c_loc(x(1, 2, 1))
      if (size(x, 3) > 1) next(3) = c_loc(x(1, 1, 2))
    end if
    a = array_ref(SIMGRAD_DTYPE_CODE_INT, 32, shape(x), first, next)
  end function arg_i32_3

  function value_f64(v) result(a)
    real(c_double), intent(in) :: v
    type(simgrad_arg_t) :: a
    a%code = int(SIMGRAD_DTYPE_CODE_FLOAT, c_int8_t)
    a%bits = 64_c_int8_t
    a%by_value = 2
    a%rval = v
  end function value_f64

  function value_f32(v) result(a)
    real(c_float), intent(in) :: v
    type(simgrad_arg_t) :: a
    a%code = int(SIMGRAD_DTYPE_CODE_FLOAT, c_int8_t)
    a%bits = 32_c_int8_t
    a%by_value = 2
    a%rval = real(v, c_double)
  end function value_f32

  function value_i64(v) result(a)
    integer(c_int64_t), intent(in) :: v
    type(simgrad_arg_t) :: a
    a%code = int(SIMGRAD_DTYPE_CODE_INT, c_int8_t)
    a%bits = 64_c_int8_t
    a%by_value = 1
    a%ival = v
  end function value_i64

  function value_i32(v) result(a)
    integer(c_int32_t), intent(in) :: v
    type(simgrad_arg_t) :: a
    a%code = int(SIMGRAD_DTYPE_CODE_INT, c_int8_t)
    a%bits = 32_c_int8_t
    a%by_value = 1
    a%ival = int(v, c_int64_t)
  end function value_i32

end module simgrad
