//! The tensor descriptor: how arrays, scalars and sizes cross the C ABI.
//!
//! [`simgrad_tensor`] has exactly the layout of DLPack's `DLTensor` (and [`simgrad_device`],
//! [`simgrad_dtype`] those of `DLDevice`, `DLDataType`), so a `DLTensor *` obtained from any
//! DLPack producer (NumPy, PyTorch, JAX, CuPy, ...) can be passed where a `simgrad_tensor *` is
//! expected, without copying. Compile-time assertions below pin the layout.

use crate::error::{Failure, FfiResult};
use crate::status::simgrad_status;
use simgrad_core::{ArgRef, DType};
use std::ffi::c_void;

/// DLPack's `kDLInt`: signed integers (`i32`, `i64`).
pub const SIMGRAD_DTYPE_CODE_INT: u8 = 0;
/// DLPack's `kDLFloat`: IEEE floats (`f32`, `f64`).
pub const SIMGRAD_DTYPE_CODE_FLOAT: u8 = 2;
/// DLPack's `kDLCPU`: host memory, the only device simgrad accepts.
pub const SIMGRAD_DEVICE_CPU: i32 = 1;

/// Where a tensor's memory lives, as DLPack's `DLDevice`. simgrad accepts only host memory
/// (`device_type == SIMGRAD_DEVICE_CPU`; `device_id` is then ignored).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct simgrad_device {
    /// DLPack device type (`1` = CPU).
    pub device_type: i32,
    /// Device ordinal (ignored for the CPU).
    pub device_id: i32,
}

/// Element type, as DLPack's `DLDataType`. simgrad supports `{2, 32, 1}` (f32), `{2, 64, 1}`
/// (f64), `{0, 32, 1}` (i32) and `{0, 64, 1}` (i64).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct simgrad_dtype {
    /// Type code: `SIMGRAD_DTYPE_CODE_INT` (0) or `SIMGRAD_DTYPE_CODE_FLOAT` (2).
    pub code: u8,
    /// Bits per element (32 or 64).
    pub bits: u8,
    /// Vector lanes; always 1.
    pub lanes: u16,
}

impl From<DType> for simgrad_dtype {
    fn from(d: DType) -> simgrad_dtype {
        let (code, bits) = d.dlpack();
        simgrad_dtype {
            code,
            bits,
            lanes: 1,
        }
    }
}

/// One argument of a call, laid out exactly like DLPack's `DLTensor` (48 bytes on 64-bit
/// targets), which may be passed in its place.
///
/// * An array: `data` points to its first element (before `byte_offset` is added), `ndim` and
///   `shape` give its extents, `strides` its strides in elements (NULL: compact row-major; a
///   kernel with Fortran memory order needs explicit column-major strides, or rank <= 1).
/// * A scalar or a size: a rank-0 tensor (`ndim == 0`, `shape` may be NULL) whose `data` points
///   to the value.
///
/// simgrad only reads the descriptor during the call and never keeps it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct simgrad_tensor {
    /// Start of the memory; the first element is at `data + byte_offset`.
    pub data: *mut c_void,
    /// Where the memory lives; must be the CPU.
    pub device: simgrad_device,
    /// Number of dims (0 for scalars and sizes); never negative.
    pub ndim: i32,
    /// Element type.
    pub dtype: simgrad_dtype,
    /// `ndim` extents; may be NULL only when `ndim` is 0.
    pub shape: *mut i64,
    /// `ndim` strides in elements, or NULL for compact row-major.
    pub strides: *mut i64,
    /// Offset in bytes from `data` to the first element.
    pub byte_offset: u64,
}

// The DLTensor layout, checked at compile time (DLPack `dlpack.h`, v0.8 and later).
#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<simgrad_device>() == 8);
    assert!(size_of::<simgrad_dtype>() == 4);
    assert!(size_of::<simgrad_tensor>() == 48);
    assert!(align_of::<simgrad_tensor>() == 8);
    assert!(offset_of!(simgrad_tensor, data) == 0);
    assert!(offset_of!(simgrad_tensor, device) == 8);
    assert!(offset_of!(simgrad_tensor, ndim) == 16);
    assert!(offset_of!(simgrad_tensor, dtype) == 20);
    assert!(offset_of!(simgrad_tensor, shape) == 24);
    assert!(offset_of!(simgrad_tensor, strides) == 32);
    assert!(offset_of!(simgrad_tensor, byte_offset) == 40);
};

/// Which list a descriptor came from, for messages: `"args"`, `"tangents_in"`, ...
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site<'n> {
    /// The parameter (`"args"`).
    pub param: &'static str,
    /// The position in the list.
    pub index: usize,
    /// The kernel's name for the argument at that position, when there is one.
    pub arg_name: Option<&'n str>,
}

impl std::fmt::Display for Site<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}[{}]`", self.param, self.index)?;
        match self.arg_name {
            Some(n) => write!(f, " (argument `{n}`)"),
            None => write!(f, " (beyond the kernel's arguments)"),
        }
    }
}

impl simgrad_tensor {
    /// The runtime's view of this descriptor. Checks what the runtime cannot see from an
    /// [`ArgRef`]: a negative `ndim`, a NULL `shape` with `ndim > 0`, a `byte_offset` that does not
    /// fit in memory. Dtype, shape values, strides and the device are checked by the runtime
    /// against the manifest.
    ///
    /// # Safety
    /// `shape` (and `strides` when not NULL) point to `ndim` elements that live for `'a`.
    pub(crate) unsafe fn as_arg_ref<'a>(&'a self, site: Site<'_>) -> FfiResult<ArgRef<'a>> {
        let ndim = usize::try_from(self.ndim).map_err(|_| {
            Failure::new(
                simgrad_status::SIMGRAD_ERR_SHAPE,
                format!("{site}: `ndim` is {}, it must not be negative", self.ndim),
            )
        })?;
        let shape: &[i64] = if ndim == 0 {
            &[]
        } else if self.shape.is_null() {
            return Err(Failure::null(format!(
                "{site}: `shape` is NULL but ndim is {ndim}"
            )));
        } else {
            std::slice::from_raw_parts(self.shape, ndim)
        };
        let strides = if self.strides.is_null() {
            None
        } else if ndim == 0 {
            Some(&[][..])
        } else {
            Some(std::slice::from_raw_parts(self.strides.cast_const(), ndim))
        };
        let offset = usize::try_from(self.byte_offset).map_err(|_| {
            Failure::invalid(format!(
                "{site}: `byte_offset` {} does not fit in memory",
                self.byte_offset
            ))
        })?;
        let d = self.dtype;
        Ok(ArgRef {
            // The runtime reports a NULL `data` itself, naming the argument; only a non-NULL
            // pointer is offset.
            data: if self.data.is_null() {
                self.data
            } else {
                self.data.cast::<u8>().wrapping_add(offset).cast()
            },
            dtype: DType::from_dlpack(d.code, d.bits, d.lanes).ok_or((d.code, d.bits, d.lanes)),
            device_type: self.device.device_type,
            shape,
            strides,
        })
    }
}

// Unit tests of the descriptor conversion; they need no kernel library, so `cargo xtask miri`
// runs them under Miri, which checks every raw read of `shape`, `strides` and `data`.
#[cfg(test)]
mod tests {
    use super::*;
    use simgrad_core::{validate_call, Manifest, Mode};

    const CPU: simgrad_device = simgrad_device {
        device_type: SIMGRAD_DEVICE_CPU,
        device_id: 0,
    };

    fn site() -> Site<'static> {
        Site {
            param: "args",
            index: 1,
            arg_name: Some("x"),
        }
    }

    fn tensor(data: *mut c_void, dtype: DType, shape: &mut [i64]) -> simgrad_tensor {
        simgrad_tensor {
            data,
            device: CPU,
            ndim: shape.len() as i32,
            dtype: dtype.into(),
            shape: if shape.is_empty() {
                std::ptr::null_mut()
            } else {
                shape.as_mut_ptr()
            },
            strides: std::ptr::null_mut(),
            byte_offset: 0,
        }
    }

    #[test]
    fn converts_shape_strides_and_byte_offset() {
        let mut x = [1.0f64, 2.0, 3.0, 4.0];
        let p = x.as_mut_ptr();
        let (mut shape, mut strides) = ([3i64], [1i64]);
        let t = simgrad_tensor {
            strides: strides.as_mut_ptr(),
            byte_offset: 8,
            ..tensor(p.cast(), DType::F64, &mut shape)
        };
        let a = unsafe { t.as_arg_ref(site()) }.unwrap();
        assert_eq!(a.data, p.wrapping_add(1).cast());
        assert_eq!(a.dtype, Ok(DType::F64));
        assert_eq!(a.device_type, SIMGRAD_DEVICE_CPU);
        assert_eq!(a.shape, &[3]);
        assert_eq!(a.strides, Some(&[1i64][..]));
        // The runtime reads elements through the converted pointer.
        assert_eq!(unsafe { *a.data.cast::<f64>() }, 2.0);
    }

    #[test]
    fn rank_zero_needs_no_shape_and_ignores_strides() {
        let mut v = 5i64;
        let mut strides = [9i64];
        let t = simgrad_tensor {
            strides: strides.as_mut_ptr(),
            ..tensor((&mut v as *mut i64).cast(), DType::I64, &mut [])
        };
        let a = unsafe { t.as_arg_ref(site()) }.unwrap();
        assert!(a.shape.is_empty());
        assert_eq!(a.strides, Some(&[][..]));
        assert_eq!(unsafe { *a.data.cast::<i64>() }, 5);
    }

    #[test]
    fn null_data_stays_null_whatever_the_offset() {
        let mut shape = [0i64];
        let t = simgrad_tensor {
            byte_offset: 64,
            ..tensor(std::ptr::null_mut(), DType::F32, &mut shape)
        };
        assert!(unsafe { t.as_arg_ref(site()) }.unwrap().data.is_null());
    }

    #[test]
    fn rejects_what_the_runtime_cannot_see() {
        let mut x = [0.0f64; 2];
        let mut shape = [2i64];
        let t = simgrad_tensor {
            ndim: -1,
            ..tensor(x.as_mut_ptr().cast(), DType::F64, &mut shape)
        };
        let e = unsafe { t.as_arg_ref(site()) }.unwrap_err();
        assert_eq!(e.status, simgrad_status::SIMGRAD_ERR_SHAPE);
        assert_eq!(
            e.message,
            "`args[1]` (argument `x`): `ndim` is -1, it must not be negative"
        );
        let t = simgrad_tensor {
            shape: std::ptr::null_mut(),
            ..tensor(x.as_mut_ptr().cast(), DType::F64, &mut shape)
        };
        let e = unsafe { t.as_arg_ref(site()) }.unwrap_err();
        assert_eq!(e.status, simgrad_status::SIMGRAD_ERR_NULL_ARGUMENT);
        assert!(e.message.contains("`shape` is NULL but ndim is 1"), "{e:?}");
        let beyond = Site {
            arg_name: None,
            ..site()
        };
        let e = unsafe { t.as_arg_ref(beyond) }.unwrap_err();
        assert!(
            e.message
                .starts_with("`args[1]` (beyond the kernel's arguments)"),
            "{e:?}"
        );
    }

    #[test]
    fn unsupported_dtypes_reach_the_runtime_as_their_dlpack_triple() {
        let mut x = [0u16; 2];
        let mut shape = [2i64];
        let t = simgrad_tensor {
            dtype: simgrad_dtype {
                code: 2,
                bits: 16,
                lanes: 1,
            },
            ..tensor(x.as_mut_ptr().cast(), DType::F32, &mut shape)
        };
        assert_eq!(
            unsafe { t.as_arg_ref(site()) }.unwrap().dtype,
            Err((2, 16, 1))
        );
    }

    fn convert(list: &[simgrad_tensor]) -> Vec<ArgRef<'_>> {
        list.iter()
            .enumerate()
            .map(|(index, t)| {
                let site = Site {
                    param: "args",
                    index,
                    arg_name: None,
                };
                unsafe { t.as_arg_ref(site) }.unwrap()
            })
            .collect()
    }

    #[test]
    fn converted_descriptors_validate_against_a_manifest() {
        let manifest = r#"{
          "manifest_version": 1, "abi_version": 1, "generator": "test",
          "kernels": [{
            "name": "scale", "symbol": "scale", "order": "C",
            "args": [
              {"name": "n", "kind": "size", "dtype": "i64", "intent": "in", "differentiable": false},
              {"name": "x", "kind": "array", "dtype": "f64", "shape": ["n"], "intent": "in", "differentiable": true},
              {"name": "y", "kind": "array", "dtype": "f64", "shape": ["n"], "intent": "out", "differentiable": true}
            ],
            "modes": {"primal": {"symbol": "p"}}
          }]
        }"#;
        let k = Manifest::from_json(manifest, "test")
            .unwrap()
            .kernels
            .remove(0);
        let mut n = 3i64;
        let mut x = [1.0f64; 3];
        let mut y = [0.0f64; 3];
        let (mut s1, mut s2) = ([3i64], [3i64]);
        let list = [
            tensor((&mut n as *mut i64).cast(), DType::I64, &mut []),
            tensor(x.as_mut_ptr().cast(), DType::F64, &mut s1),
            tensor(y.as_mut_ptr().cast(), DType::F64, &mut s2),
        ];
        let bound = validate_call(&k, Mode::Primal, &convert(&list)).unwrap();
        assert_eq!(&bound.numel[..], &[1, 3, 3]);

        // y written over x through byte_offset.
        let mut aliased = list;
        aliased[2].data = aliased[1].data;
        aliased[2].byte_offset = 8;
        let e = validate_call(&k, Mode::Primal, &convert(&aliased)).unwrap_err();
        assert!(
            e.to_string().contains("argument `y` overlaps argument `x`"),
            "{e}"
        );
    }
}
