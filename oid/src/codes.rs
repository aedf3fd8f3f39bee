//! OID codes (ndis-wfp-abi.md §1; mingw-w64 `ntddndis.h` lines 1380-1404).

use core::fmt;

/// An NDIS object identifier (`NDIS_OID`, a `ULONG`).
#[doc(alias = "NDIS_OID")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Oid(pub u32);

macro_rules! oids {
    ($($(#[$m:meta])* $name:ident = $val:expr;)*) => {
        impl Oid {
            $($(#[$m])* pub const $name: Oid = Oid($val);)*

            /// The Windows name of a known OID, e.g. `"OID_TCP_TASK_IPSEC_ADD_SA"`.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(concat!("OID_", stringify!($name))),)*
                    _ => None,
                }
            }
        }
    };
}

oids! {
    /// `OID_TCP_TASK_OFFLOAD`: NDIS 5 style query/set of the task offload capabilities.
    TCP_TASK_OFFLOAD = 0xFC01_0201;
    /// `OID_TCP_TASK_IPSEC_ADD_SA`: set; buffer `OFFLOAD_IPSEC_ADD_SA`.
    TCP_TASK_IPSEC_ADD_SA = 0xFC01_0202;
    /// `OID_TCP_TASK_IPSEC_DELETE_SA`: set; buffer `OFFLOAD_IPSEC_DELETE_SA`.
    TCP_TASK_IPSEC_DELETE_SA = 0xFC01_0203;
    /// `OID_TCP_SAN_SUPPORT` (not IPsec).
    TCP_SAN_SUPPORT = 0xFC01_0204;
    /// `OID_TCP_TASK_IPSEC_ADD_UDPESP_SA`: set; buffer `OFFLOAD_IPSEC_ADD_UDPESP_SA`.
    TCP_TASK_IPSEC_ADD_UDPESP_SA = 0xFC01_0205;
    /// `OID_TCP_TASK_IPSEC_DELETE_UDPESP_SA`: set; buffer `OFFLOAD_IPSEC_DELETE_UDPESP_SA`.
    TCP_TASK_IPSEC_DELETE_UDPESP_SA = 0xFC01_0206;
    /// `OID_TCP4_OFFLOAD_STATS` (chimney).
    TCP4_OFFLOAD_STATS = 0xFC01_0207;
    /// `OID_TCP6_OFFLOAD_STATS` (chimney).
    TCP6_OFFLOAD_STATS = 0xFC01_0208;
    /// `OID_IP4_OFFLOAD_STATS` (chimney).
    IP4_OFFLOAD_STATS = 0xFC01_0209;
    /// `OID_IP6_OFFLOAD_STATS` (chimney).
    IP6_OFFLOAD_STATS = 0xFC01_020A;
    /// `OID_TCP_OFFLOAD_CURRENT_CONFIG`: query; returns `NDIS_OFFLOAD`.
    TCP_OFFLOAD_CURRENT_CONFIG = 0xFC01_020B;
    /// `OID_TCP_OFFLOAD_PARAMETERS`: set; buffer `NDIS_OFFLOAD_PARAMETERS`.
    TCP_OFFLOAD_PARAMETERS = 0xFC01_020C;
    /// `OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES`: query; returns `NDIS_OFFLOAD`.
    TCP_OFFLOAD_HARDWARE_CAPABILITIES = 0xFC01_020D;
    /// `OID_TCP_CONNECTION_OFFLOAD_CURRENT_CONFIG` (chimney).
    TCP_CONNECTION_OFFLOAD_CURRENT_CONFIG = 0xFC01_020E;
    /// `OID_TCP_CONNECTION_OFFLOAD_HARDWARE_CAPABILITIES` (chimney).
    TCP_CONNECTION_OFFLOAD_HARDWARE_CAPABILITIES = 0xFC01_020F;
    /// `OID_OFFLOAD_ENCAPSULATION`.
    OFFLOAD_ENCAPSULATION = 0x0101_010A;
    /// `OID_TCP_CONNECTION_OFFLOAD_PARAMETERS` (chimney).
    TCP_CONNECTION_OFFLOAD_PARAMETERS = 0xFC03_0201;
    /// `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA`: set; linked list of `IPSEC_OFFLOAD_V2_ADD_SA`.
    TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA = 0xFC03_0202;
    /// `OID_TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA`: set; linked list of `IPSEC_OFFLOAD_V2_DELETE_SA`.
    TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA = 0xFC03_0203;
    /// `OID_TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA`: set; `IPSEC_OFFLOAD_V2_UPDATE_SA`.
    TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA = 0xFC03_0204;
    /// `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX`: set; one `IPSEC_OFFLOAD_V2_ADD_SA_EX`.
    TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX = 0xFC03_0205;
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "Oid({:#010x})", self.0),
        }
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_headers() {
        assert_eq!(Oid::TCP_TASK_IPSEC_ADD_SA.0, 4_227_924_482);
        assert_eq!(Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA.0, 4_227_924_485);
        assert_eq!(Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA.0, 4_228_055_554);
        assert_eq!(Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX.0, 4_228_055_557);
        assert_eq!(Oid::OFFLOAD_ENCAPSULATION.0, 16_843_018);
        assert_eq!(
            Oid::TCP_TASK_IPSEC_DELETE_SA.name(),
            Some("OID_TCP_TASK_IPSEC_DELETE_SA")
        );
        assert_eq!(format!("{:?}", Oid(7)), "Oid(0x00000007)");
    }
}
