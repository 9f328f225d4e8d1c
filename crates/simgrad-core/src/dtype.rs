//! Element types of kernel arguments.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The element type of an argument. Names match the spec and the manifest (`f32`, `f64`, `i32`,
/// `i64`); the numeric codes follow DLPack (`kDLInt` = 0, `kDLFloat` = 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit IEEE float (`float`, `real(c_float)`).
    F32,
    /// 64-bit IEEE float (`double`, `real(c_double)`).
    F64,
    /// 32-bit signed integer (`int32_t`, `integer(c_int32_t)`).
    I32,
    /// 64-bit signed integer (`int64_t`, `integer(c_int64_t)`).
    I64,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }

    /// Whether values of this type can carry derivatives.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The spec/manifest name (`"f64"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::I64 => "i64",
        }
    }

    /// The C type used in generated code.
    pub fn c_type(self) -> &'static str {
        match self {
            DType::F32 => "float",
            DType::F64 => "double",
            DType::I32 => "int32_t",
            DType::I64 => "int64_t",
        }
    }

    /// Parses a spec/manifest name.
    pub fn from_name(name: &str) -> Option<DType> {
        match name {
            "f32" => Some(DType::F32),
            "f64" => Some(DType::F64),
            "i32" => Some(DType::I32),
            "i64" => Some(DType::I64),
            _ => None,
        }
    }

    /// The DLPack `(code, bits)` pair of this type (lanes are always 1).
    pub fn dlpack(self) -> (u8, u8) {
        match self {
            DType::F32 => (2, 32),
            DType::F64 => (2, 64),
            DType::I32 => (0, 32),
            DType::I64 => (0, 64),
        }
    }

    /// The type with DLPack code `code`, `bits` bits and `lanes` lanes, if simgrad supports it.
    pub fn from_dlpack(code: u8, bits: u8, lanes: u16) -> Option<DType> {
        match (code, bits, lanes) {
            (2, 32, 1) => Some(DType::F32),
            (2, 64, 1) => Some(DType::F64),
            (0, 32, 1) => Some(DType::I32),
            (0, 64, 1) => Some(DType::I64),
            _ => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlpack_codes_round_trip() {
        for d in [DType::F32, DType::F64, DType::I32, DType::I64] {
            let (code, bits) = d.dlpack();
            assert_eq!(DType::from_dlpack(code, bits, 1), Some(d));
            assert_eq!(DType::from_name(d.name()), Some(d));
            assert_eq!(usize::from(bits) / 8, d.size());
        }
        assert_eq!(DType::from_dlpack(2, 16, 1), None);
        assert_eq!(DType::from_dlpack(2, 64, 2), None);
    }
}
