//! Borrowed descriptions of the buffers a caller passes to a kernel.

use crate::dtype::DType;
use std::ffi::c_void;

/// DLPack's device type for host memory.
pub const DEVICE_CPU: i32 = 1;

/// One argument (or tangent) of a call: a data pointer with its dtype, shape and strides, laid out
/// like DLPack's `DLTensor` minus the ownership. Scalars and sizes are rank-0 with `data`
/// pointing to the value.
///
/// The runtime never keeps an `ArgRef` past the call it was passed to.
#[derive(Debug, Clone, Copy)]
pub struct ArgRef<'a> {
    /// First element (already offset by DLPack's `byte_offset`).
    pub data: *mut c_void,
    /// The element type, or the DLPack `(code, bits, lanes)` triple simgrad does not support.
    pub dtype: Result<DType, (u8, u8, u16)>,
    /// DLPack device type; only [`DEVICE_CPU`] is accepted.
    pub device_type: i32,
    /// Extent of each dim.
    pub shape: &'a [i64],
    /// Stride of each dim in elements; `None` means compact row-major, as in DLPack.
    pub strides: Option<&'a [i64]>,
}

impl<'a> ArgRef<'a> {
    /// A contiguous host array in row-major order (or column-major when `strides` say so).
    pub fn array<T: Element>(data: &'a mut [T], shape: &'a [i64]) -> ArgRef<'a> {
        ArgRef {
            data: data.as_mut_ptr().cast(),
            dtype: Ok(T::DTYPE),
            device_type: DEVICE_CPU,
            shape,
            strides: None,
        }
    }

    /// A read-only host array. The runtime never writes through an input or a seed; a call that
    /// would write to it (an `out` argument) is the caller's bug, as with any C API.
    pub fn array_in<T: Element>(data: &'a [T], shape: &'a [i64]) -> ArgRef<'a> {
        ArgRef {
            data: data.as_ptr() as *mut c_void,
            dtype: Ok(T::DTYPE),
            device_type: DEVICE_CPU,
            shape,
            strides: None,
        }
    }

    /// A scalar or size passed by value (read only; see [`ArgRef::scalar_mut`] for results).
    pub fn scalar<T: Element>(value: &'a T) -> ArgRef<'a> {
        ArgRef {
            data: value as *const T as *mut c_void,
            dtype: Ok(T::DTYPE),
            device_type: DEVICE_CPU,
            shape: &[],
            strides: None,
        }
    }

    /// A scalar the call writes: the cotangent of a scalar in a VJP, the tangent of a scalar.
    pub fn scalar_mut<T: Element>(value: &'a mut T) -> ArgRef<'a> {
        ArgRef {
            data: (value as *mut T).cast(),
            dtype: Ok(T::DTYPE),
            device_type: DEVICE_CPU,
            shape: &[],
            strides: None,
        }
    }

    /// Number of elements (product of the shape; 1 for rank 0).
    pub fn numel(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })
    }
}

/// The value of a size argument (`i32` or `i64`) as `i64`.
///
/// # Safety
/// `data` is non-NULL and points to a value of `dtype`, as validation checks.
pub(crate) unsafe fn read_size(data: *const std::ffi::c_void, dtype: DType) -> i64 {
    match dtype {
        DType::I32 => i64::from(*(data as *const i32)),
        _ => *(data as *const i64),
    }
}

/// Rust element types that map to a [`DType`].
pub trait Element: Copy + 'static {
    /// The matching dtype.
    const DTYPE: DType;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
}
impl Element for f64 {
    const DTYPE: DType = DType::F64;
}
impl Element for i32 {
    const DTYPE: DType = DType::I32;
}
impl Element for i64 {
    const DTYPE: DType = DType::I64;
}
