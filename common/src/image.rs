//! Images (SPEC §5): kinds, types, visibility, the two status machines (base and custom), and
//! the seed's matrix of importable operating systems.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == text)
            }
            /// `a, b or c`, for error messages.
            pub fn choices() -> String {
                let names: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                match names.split_last() {
                    Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                    _ => names.join(""),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// Base images are the platform's; custom images belong to a tenant.
    ImageKind { Base => "base", Custom => "custom" }
);
text_enum!(
    /// A bootable disk image (qcow2) or an ISO.
    ImageType { Image => "image", Iso => "iso" }
);
text_enum!(
    /// What an ISO is for: only an `os` ISO can boot an instance.
    IsoPurpose { Os => "os", Tool => "tool" }
);
text_enum!(
    Visibility { Featured => "featured", Public => "public", Private => "private" }
);
text_enum!(
    OsType { Linux => "linux", Windows => "windows" }
);
text_enum!(
    Architecture { X86_64 => "x86_64", Aarch64 => "aarch64" }
);
text_enum!(
    /// Base images: making, available, deleting. Custom images: creating, available,
    /// deleting, importing, import_failed.
    ImageStatus {
        Making => "making",
        Creating => "creating",
        Importing => "importing",
        ImportFailed => "import_failed",
        Available => "available",
        Deleting => "deleting",
    }
);

impl ImageStatus {
    /// Whether a status belongs to this kind's machine.
    pub fn valid_for(self, kind: ImageKind) -> bool {
        use ImageStatus as S;
        match kind {
            ImageKind::Base => matches!(self, S::Making | S::Available | S::Deleting),
            ImageKind::Custom => matches!(
                self,
                S::Creating | S::Importing | S::ImportFailed | S::Available | S::Deleting
            ),
        }
    }

    /// Whether an image in this status may be deleted (SPEC §5: base only when available;
    /// custom when available or import_failed).
    pub fn deletable(self, kind: ImageKind) -> bool {
        match kind {
            ImageKind::Base => self == ImageStatus::Available,
            ImageKind::Custom => matches!(self, ImageStatus::Available | ImageStatus::ImportFailed),
        }
    }
}

/// The platforms the seed lists, with the versions each architecture supports.
pub const OS_MATRIX: &[(OsType, &str, Architecture, &[&str])] = &[
    (
        OsType::Linux,
        "centos",
        Architecture::X86_64,
        &[
            "6.5", "6.6", "6.7", "6.8", "6.9", "6.10", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5",
            "7.6", "7.7", "7.8", "7.9",
        ],
    ),
    (
        OsType::Linux,
        "centos",
        Architecture::Aarch64,
        &["7.6", "7.7", "7.8", "7.9"],
    ),
    (OsType::Linux, "debian", Architecture::X86_64, &["10.12"]),
    (
        OsType::Linux,
        "ubuntu",
        Architecture::X86_64,
        &["14.04", "16.04", "18.04", "20.04"],
    ),
    (
        OsType::Linux,
        "ubuntu",
        Architecture::Aarch64,
        &["16.04", "18.04"],
    ),
    (
        OsType::Windows,
        "windows",
        Architecture::X86_64,
        &["2008", "2008r2", "2012", "2012r2", "2016", "2019"],
    ),
];

/// Target sizes an import may ask for, in GB (the seed: 20 to 500).
pub const TARGET_SIZE_GB: std::ops::RangeInclusive<u32> = 20..=500;

/// Checks platform and version against the matrix. Platform and version are compared
/// case-insensitively (`CentOS`, `2008R2`); the error names the field that is wrong and what
/// would be accepted.
pub fn check_os(
    os_type: OsType,
    arch: Architecture,
    platform: &str,
    version: &str,
) -> Result<(), (&'static str, String)> {
    let platform_lc = platform.trim().to_lowercase();
    let version_lc = version.trim().to_lowercase();
    let platforms: Vec<&str> = OS_MATRIX
        .iter()
        .filter(|(t, _, _, _)| *t == os_type)
        .map(|(_, p, _, _)| *p)
        .collect();
    if !platforms.contains(&platform_lc.as_str()) {
        let mut known = platforms.clone();
        known.dedup();
        return Err((
            "platform",
            format!(
                "'{platform}' is not a {os_type} platform plinth imports ({})",
                known.join(", ")
            ),
        ));
    }
    let Some((_, _, _, versions)) = OS_MATRIX
        .iter()
        .find(|(t, p, a, _)| *t == os_type && *p == platform_lc && *a == arch)
    else {
        return Err((
            "architecture",
            format!("{platform} images are not supported on {arch}"),
        ));
    };
    if !versions.contains(&version_lc.as_str()) {
        return Err((
            "version",
            format!(
                "{platform} {version} on {arch} is not supported ({})",
                versions.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix() {
        use Architecture::*;
        use OsType::*;
        let ok = [
            (Linux, X86_64, "CentOS", "6.5"),
            (Linux, X86_64, "centos", "6.10"),
            (Linux, X86_64, "centos", "7.0"),
            (Linux, Aarch64, "centos", "7.6"),
            (Linux, X86_64, "debian", "10.12"),
            (Linux, X86_64, "ubuntu", "20.04"),
            (Linux, Aarch64, "ubuntu", "18.04"),
            (Windows, X86_64, "Windows", "2008R2"),
            (Windows, X86_64, "windows", "2019"),
        ];
        for (t, a, p, v) in ok {
            assert_eq!(check_os(t, a, p, v), Ok(()), "{t} {a} {p} {v}");
        }
        let bad = [
            (Linux, X86_64, "centos", "6.4", "version"),
            (Linux, X86_64, "centos", "8.0", "version"),
            (Linux, Aarch64, "centos", "7.5", "version"),
            (Linux, Aarch64, "debian", "10.12", "architecture"),
            (Linux, X86_64, "ubuntu", "22.04", "version"),
            (Linux, Aarch64, "ubuntu", "20.04", "version"),
            (Linux, X86_64, "windows", "2019", "platform"),
            (Windows, X86_64, "ubuntu", "20.04", "platform"),
            (Windows, Aarch64, "windows", "2019", "architecture"),
            (Windows, X86_64, "windows", "2022", "version"),
            (Linux, X86_64, "fedora", "40", "platform"),
        ];
        for (t, a, p, v, field) in bad {
            let err = check_os(t, a, p, v).expect_err("refused");
            assert_eq!(err.0, field, "{t} {a} {p} {v}: {}", err.1);
        }
    }

    #[test]
    fn statuses_per_kind() {
        use ImageStatus::*;
        assert!(Making.valid_for(ImageKind::Base) && !Making.valid_for(ImageKind::Custom));
        assert!(
            ImportFailed.valid_for(ImageKind::Custom) && !ImportFailed.valid_for(ImageKind::Base)
        );
        assert!(Available.deletable(ImageKind::Base) && !ImportFailed.deletable(ImageKind::Base));
        assert!(
            ImportFailed.deletable(ImageKind::Custom) && !Importing.deletable(ImageKind::Custom)
        );
        assert_eq!(Visibility::choices(), "featured, public or private");
        assert_eq!(ImageStatus::parse("import_failed"), Some(ImportFailed));
    }
}
