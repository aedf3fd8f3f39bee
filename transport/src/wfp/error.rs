//! [`WfpError`]: the exact `DWORD` result code of a failed WFP call.
//!
//! Values and names from `ndis-wfp-abi.md` §7 (`[MW]` winerror.h, `[WS]` Foundation); the short
//! descriptions paraphrase Microsoft's "WFP Error Codes" page.
#![allow(non_upper_case_globals)]

use core::fmt;

/// A failed WFP management call: the exact `DWORD` Windows would return.
///
/// `code()` gives the number (`FWP_E_*` HRESULT-style values or Win32 `ERROR_*` codes),
/// `name()` the Windows constant name; `Display` and `Debug` show both.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WfpError(u32);

impl WfpError {
    /// Wrap a raw result code (any value; unknown codes print as `UNKNOWN`).
    pub const fn from_code(code: u32) -> Self {
        WfpError(code)
    }

    /// The exact `DWORD` returned by the Windows function.
    pub const fn code(self) -> u32 {
        self.0
    }

    /// The Windows constant name, e.g. `"FWP_E_NOT_FOUND"`, or `"UNKNOWN"`.
    pub fn name(self) -> &'static str {
        lookup(self.0).map_or("UNKNOWN", |(n, _)| n)
    }

    /// A one-line description of the error.
    pub fn description(self) -> &'static str {
        lookup(self.0).map_or("unknown error code", |(_, d)| d)
    }
}

impl fmt::Display for WfpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (0x{:08X}): {}",
            self.name(),
            self.0,
            self.description()
        )
    }
}

impl fmt::Debug for WfpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WfpError({}, 0x{:08X})", self.name(), self.0)
    }
}

impl std::error::Error for WfpError {}

macro_rules! codes {
    ($( $(#[$m:meta])* $name:ident = $val:expr, $desc:expr; )*) => {
        $(
            $(#[$m])*
            #[doc = concat!("`", stringify!($name), "`: ", $desc, ".")]
            pub const $name: WfpError = WfpError($val);
        )*
        fn lookup(code: u32) -> Option<(&'static str, &'static str)> {
            match code {
                $( $val => Some((stringify!($name), $desc)), )*
                _ => None,
            }
        }
    };
}

codes! {
    ERROR_ACCESS_DENIED = 5, "the caller lacks the access right the call needs";
    ERROR_INVALID_HANDLE = 6, "the engine, enumeration or subscription handle is not valid";
    ERROR_NOT_SUPPORTED = 50, "the request is not supported";
    ERROR_INVALID_PARAMETER = 87, "a parameter is not valid";
    FWP_E_CALLOUT_NOT_FOUND = 0x8032_0001, "the callout does not exist";
    FWP_E_CONDITION_NOT_FOUND = 0x8032_0002, "the filter condition does not exist";
    FWP_E_FILTER_NOT_FOUND = 0x8032_0003, "the filter does not exist";
    FWP_E_LAYER_NOT_FOUND = 0x8032_0004, "the layer does not exist";
    FWP_E_PROVIDER_NOT_FOUND = 0x8032_0005, "the provider does not exist";
    FWP_E_PROVIDER_CONTEXT_NOT_FOUND = 0x8032_0006, "the provider context does not exist";
    FWP_E_SUBLAYER_NOT_FOUND = 0x8032_0007, "the sublayer does not exist";
    FWP_E_NOT_FOUND = 0x8032_0008, "the object does not exist";
    FWP_E_ALREADY_EXISTS = 0x8032_0009, "an object with that GUID or LUID already exists";
    FWP_E_IN_USE = 0x8032_000A, "the object is referenced by other objects and cannot be deleted";
    FWP_E_DYNAMIC_SESSION_IN_PROGRESS = 0x8032_000B, "the call is not allowed from within a dynamic session";
    FWP_E_WRONG_SESSION = 0x8032_000C, "the call was made from the wrong session";
    FWP_E_NO_TXN_IN_PROGRESS = 0x8032_000D, "the call must be made from within an explicit transaction";
    FWP_E_TXN_IN_PROGRESS = 0x8032_000E, "the call is not allowed from within an explicit transaction";
    FWP_E_TXN_ABORTED = 0x8032_000F, "the explicit transaction has been forcibly cancelled";
    FWP_E_SESSION_ABORTED = 0x8032_0010, "the session has been cancelled";
    FWP_E_INCOMPATIBLE_TXN = 0x8032_0011, "the call is not allowed from within a read-only transaction";
    FWP_E_TIMEOUT = 0x8032_0012, "the call timed out while waiting to acquire the transaction lock";
    FWP_E_NET_EVENTS_DISABLED = 0x8032_0013, "collection of network diagnostic events is disabled";
    FWP_E_INCOMPATIBLE_LAYER = 0x8032_0014, "the operation is not supported by the specified layer";
    FWP_E_KM_CLIENTS_ONLY = 0x8032_0015, "the call is allowed for kernel-mode callers only";
    FWP_E_LIFETIME_MISMATCH = 0x8032_0016, "the object's lifetime conflicts with an object it references";
    FWP_E_BUILTIN_OBJECT = 0x8032_0017, "the object is built in and cannot be deleted";
    FWP_E_TOO_MANY_CALLOUTS = 0x8032_0018, "the maximum number of callouts has been reached";
    FWP_E_NOTIFICATION_DROPPED = 0x8032_0019, "a notification could not be delivered";
    FWP_E_TRAFFIC_MISMATCH = 0x8032_001A, "the traffic parameters do not match those of the security association context";
    FWP_E_INCOMPATIBLE_SA_STATE = 0x8032_001B, "the call is not allowed in the current state of the security association";
    FWP_E_NULL_POINTER = 0x8032_001C, "a required pointer is null";
    FWP_E_INVALID_ENUMERATOR = 0x8032_001D, "an enumerator is not valid";
    FWP_E_INVALID_FLAGS = 0x8032_001E, "the flags field contains an invalid value";
    FWP_E_INVALID_NET_MASK = 0x8032_001F, "a network mask is not valid";
    FWP_E_INVALID_RANGE = 0x8032_0020, "an FWP_RANGE0 is not valid";
    FWP_E_INVALID_INTERVAL = 0x8032_0021, "the time interval is not valid";
    FWP_E_ZERO_LENGTH_ARRAY = 0x8032_0022, "an array that must contain at least one element is zero-length";
    FWP_E_NULL_DISPLAY_NAME = 0x8032_0023, "the displayData.name field cannot be null";
    FWP_E_INVALID_ACTION_TYPE = 0x8032_0024, "the action type is not one of the allowed action types for a filter";
    FWP_E_INVALID_WEIGHT = 0x8032_0025, "the filter weight is not valid";
    FWP_E_MATCH_TYPE_MISMATCH = 0x8032_0026, "a filter condition contains a match type that is not compatible with the operands";
    FWP_E_TYPE_MISMATCH = 0x8032_0027, "an FWP_VALUE0 or FWPM_CONDITION_VALUE0 is of the wrong type";
    FWP_E_OUT_OF_BOUNDS = 0x8032_0028, "an integer value is outside the allowed range";
    FWP_E_RESERVED = 0x8032_0029, "a reserved field is non-zero";
    FWP_E_DUPLICATE_CONDITION = 0x8032_002A, "a filter cannot contain multiple conditions operating on a single field";
    FWP_E_DUPLICATE_KEYMOD = 0x8032_002B, "a policy cannot contain the same keying module more than once";
    FWP_E_ACTION_INCOMPATIBLE_WITH_LAYER = 0x8032_002C, "the action type is not compatible with the layer";
    FWP_E_ACTION_INCOMPATIBLE_WITH_SUBLAYER = 0x8032_002D, "the action type is not compatible with the sublayer";
    FWP_E_CONTEXT_INCOMPATIBLE_WITH_LAYER = 0x8032_002E, "the raw context or provider context is not compatible with the layer";
    FWP_E_CONTEXT_INCOMPATIBLE_WITH_CALLOUT = 0x8032_002F, "the raw context or provider context is not compatible with the callout";
    FWP_E_INCOMPATIBLE_AUTH_METHOD = 0x8032_0030, "the authentication method is not compatible with the policy type";
    FWP_E_INCOMPATIBLE_DH_GROUP = 0x8032_0031, "the Diffie-Hellman group is not compatible with the policy type";
    FWP_E_EM_NOT_SUPPORTED = 0x8032_0032, "an IKE policy cannot contain an Extended Mode policy";
    FWP_E_NEVER_MATCH = 0x8032_0033, "the enumeration template or subscription will never match any objects";
    FWP_E_PROVIDER_CONTEXT_MISMATCH = 0x8032_0034, "the provider context is of the wrong type";
    FWP_E_INVALID_PARAMETER = 0x8032_0035, "the parameter is incorrect";
    FWP_E_TOO_MANY_SUBLAYERS = 0x8032_0036, "the maximum number of sublayers has been reached";
    FWP_E_CALLOUT_NOTIFICATION_FAILED = 0x8032_0037, "the notification function for a callout returned an error";
    FWP_E_INVALID_AUTH_TRANSFORM = 0x8032_0038, "the IPsec authentication transform is not valid";
    FWP_E_INVALID_CIPHER_TRANSFORM = 0x8032_0039, "the IPsec cipher transform is not valid";
    FWP_E_INCOMPATIBLE_CIPHER_TRANSFORM = 0x8032_003A, "the IPsec cipher transform is not compatible with the policy";
    FWP_E_INVALID_TRANSFORM_COMBINATION = 0x8032_003B, "the combination of IPsec transform types is not valid";
    FWP_E_DUPLICATE_AUTH_METHOD = 0x8032_003C, "a policy cannot contain the same authentication method more than once";
    FWP_E_INVALID_TUNNEL_ENDPOINT = 0x8032_003D, "a tunnel endpoint configuration is invalid";
    FWP_E_L2_DRIVER_NOT_READY = 0x8032_003E, "the WFP MAC layers are not ready";
    FWP_E_KEY_DICTATOR_ALREADY_REGISTERED = 0x8032_003F, "a key manager capable of key dictation is already registered";
    FWP_E_KEY_DICTATION_INVALID_KEYING_MATERIAL = 0x8032_0040, "the key manager dictated invalid keys";
    FWP_E_CONNECTIONS_DISABLED = 0x8032_0041, "the BFE IPsec connection tracking is disabled";
    FWP_E_INVALID_DNS_NAME = 0x8032_0042, "the DNS name is invalid";
    FWP_E_STILL_ON = 0x8032_0043, "the engine option is still enabled due to other configuration settings";
    FWP_E_IKEEXT_NOT_RUNNING = 0x8032_0044, "the IKEEXT service is not running";
    FWP_E_DROP_NOICMP = 0x8032_0104, "the packet should be dropped, no ICMP should be sent";
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_names_and_formatting() {
        assert_eq!(FWP_E_TXN_IN_PROGRESS.code(), 0x8032_000E);
        assert_eq!(FWP_E_INCOMPATIBLE_SA_STATE.code(), 0x8032_001B);
        assert_eq!(FWP_E_INVALID_TRANSFORM_COMBINATION.code(), 0x8032_003B);
        assert_eq!(ERROR_ACCESS_DENIED.code(), 5);
        assert_eq!(FWP_E_TRAFFIC_MISMATCH.name(), "FWP_E_TRAFFIC_MISMATCH");
        assert_eq!(
            format!("{FWP_E_NOT_FOUND:?}"),
            "WfpError(FWP_E_NOT_FOUND, 0x80320008)"
        );
        assert!(
            FWP_E_NOT_FOUND
                .to_string()
                .starts_with("FWP_E_NOT_FOUND (0x80320008): ")
        );
        assert_eq!(WfpError::from_code(0x1234).name(), "UNKNOWN");
        assert_eq!(WfpError::from_code(0x8032_0012), FWP_E_TIMEOUT);
    }
}
