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
// Who may see and use an image (the second seed's 精选/公共/私有): featured and public images
// are for every tenant, private ones for their owner only; admins see all. (A plain comment:
// a doc comment here would change the OpenAPI schema.)
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

/// Who is asking about an image: an admin, or a tenant by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer<'a> {
    Admin,
    Tenant(&'a str),
}

impl Visibility {
    /// Whether an image with this visibility is for every tenant: featured (an admin's
    /// recommendation) and public (its owner's offer) are; private is its owner's alone.
    pub fn shared(self) -> bool {
        match self {
            Visibility::Featured | Visibility::Public => true,
            Visibility::Private => false,
        }
    }

    /// The visibilities every tenant sees, for filters that must agree with [`visible_to`].
    pub fn shared_ones() -> impl Iterator<Item = Visibility> {
        Visibility::ALL.iter().copied().filter(|v| v.shared())
    }

    /// Whether `viewer` may give an image this visibility: only admins feature images (the
    /// seed: 管理员可将私有镜像设置为精选); an owner may make its image public or private.
    pub fn settable_by(self, viewer: Viewer<'_>) -> bool {
        match (self, viewer) {
            (_, Viewer::Admin) => true,
            (Visibility::Featured, Viewer::Tenant(_)) => false,
            (Visibility::Public | Visibility::Private, Viewer::Tenant(_)) => true,
        }
    }
}

/// The one rule for who may list, read and boot from an image, base or custom alike: admins
/// every image; a tenant the featured and public ones and its own private ones. (Changing or
/// deleting an image is a separate, narrower right: its owner's and the admins'.)
pub fn visible_to(visibility: Visibility, owner: Option<&str>, viewer: Viewer<'_>) -> bool {
    match viewer {
        Viewer::Admin => true,
        Viewer::Tenant(tenant) => visibility.shared() || owner == Some(tenant),
    }
}

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
    /// custom when available or import_failed): what the transition table says of `Delete`.
    pub fn deletable(self, kind: ImageKind) -> bool {
        self.transition(kind, ImageEvent::Delete).is_ok()
    }

    /// Whether an image in this status is waiting for its content (an import, upload, export
    /// or copy to base fills it): the statuses `ContentVerified` leaves, for either kind.
    pub fn takes_content(self) -> bool {
        [ImageKind::Base, ImageKind::Custom]
            .into_iter()
            .any(|kind| self.transition(kind, ImageEvent::ContentVerified).is_ok())
    }

    /// The two status machines of SPEC §5 as one table: every legal move is one arm, and
    /// everything else is an `InvalidImageTransition` that names where the image is and where
    /// it must be. A status of the other kind's machine moves nowhere.
    pub fn transition(
        self,
        kind: ImageKind,
        event: ImageEvent,
    ) -> Result<ImageNext, InvalidImageTransition> {
        use ImageEvent as E;
        use ImageKind as K;
        use ImageNext as N;
        use ImageStatus as S;
        let next = match (kind, self, event) {
            // Base images: made by a copy, deleted outright.
            (K::Base, S::Making, E::ContentVerified) => Some(N::Status(S::Available)),
            (K::Base, S::Making, E::Failed) => Some(N::Removed),
            (K::Base, S::Available, E::Delete) => Some(N::Status(S::Deleting)),
            (K::Base, S::Deleting, E::Destroy) => Some(N::Removed),
            // Custom images: imported, uploaded or exported; deleted into the recycle bin.
            (K::Custom, S::Importing | S::Creating, E::ContentVerified) => {
                Some(N::Status(S::Available))
            }
            (K::Custom, S::Importing | S::Creating, E::Failed) => Some(N::Status(S::ImportFailed)),
            (K::Custom, S::Available | S::ImportFailed, E::Delete) => Some(N::Status(S::Deleting)),
            (
                K::Custom,
                S::Deleting,
                E::Restore {
                    before: before @ (S::Available | S::ImportFailed),
                },
            ) => Some(N::Status(before)),
            (K::Custom, S::Deleting, E::Destroy) => Some(N::Removed),
            // Refused.
            (K::Base, S::Making, E::Delete | E::Restore { .. } | E::Destroy)
            | (
                K::Base,
                S::Available,
                E::ContentVerified | E::Failed | E::Restore { .. } | E::Destroy,
            )
            | (
                K::Base,
                S::Deleting,
                E::ContentVerified | E::Failed | E::Delete | E::Restore { .. },
            )
            | (
                K::Base,
                S::Creating | S::Importing | S::ImportFailed,
                E::ContentVerified | E::Failed | E::Delete | E::Restore { .. } | E::Destroy,
            )
            | (
                K::Custom,
                S::Making,
                E::ContentVerified | E::Failed | E::Delete | E::Restore { .. } | E::Destroy,
            )
            | (K::Custom, S::Importing | S::Creating, E::Delete | E::Restore { .. } | E::Destroy)
            | (
                K::Custom,
                S::Available | S::ImportFailed,
                E::ContentVerified | E::Failed | E::Restore { .. } | E::Destroy,
            )
            | (K::Custom, S::Deleting, E::ContentVerified | E::Failed | E::Delete)
            | (
                K::Custom,
                S::Deleting,
                E::Restore {
                    before: S::Making | S::Creating | S::Importing | S::Deleting,
                },
            ) => None,
        };
        next.ok_or(InvalidImageTransition {
            kind,
            from: self,
            event,
        })
    }
}

/// What happens to an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageEvent {
    /// Its content arrived and passed verification (import, upload, export, copy to base).
    ContentVerified,
    /// Filling it failed (import, upload, export, copy to base).
    Failed,
    /// Delete: a custom image goes into its tenant's recycle bin; a base image is destroyed next.
    Delete,
    /// Out of the recycle bin, back to the status it had when it was deleted.
    Restore { before: ImageStatus },
    /// Its content and its row go for good.
    Destroy,
}

impl ImageEvent {
    /// Every event, `Restore` once per status it could name.
    pub fn all() -> Vec<ImageEvent> {
        let mut all = vec![
            ImageEvent::ContentVerified,
            ImageEvent::Failed,
            ImageEvent::Delete,
            ImageEvent::Destroy,
        ];
        all.extend(
            ImageStatus::ALL
                .iter()
                .map(|&before| ImageEvent::Restore { before }),
        );
        all
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImageEvent::ContentVerified => "completing its content",
            ImageEvent::Failed => "failing its content",
            ImageEvent::Delete => "delete",
            ImageEvent::Restore { .. } => "restore",
            ImageEvent::Destroy => "destroy",
        }
    }
}

impl fmt::Display for ImageEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an event takes an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageNext {
    Status(ImageStatus),
    /// Its row is removed (a destroyed image, a failed copy to base).
    Removed,
}

/// An event the image's status does not allow; the message names both statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} image is {from}; {event} needs {}", self.needs_text())]
pub struct InvalidImageTransition {
    pub kind: ImageKind,
    pub from: ImageStatus,
    pub event: ImageEvent,
}

impl InvalidImageTransition {
    /// The statuses of this kind from which the event is legal, read off the table.
    pub fn needs(&self) -> Vec<ImageStatus> {
        ImageStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.transition(self.kind, self.event).is_ok())
            .collect()
    }

    /// `a, b or c`; `another status` where the event is legal from none (a restore naming a
    /// status an image is never deleted from).
    pub fn needs_text(&self) -> String {
        let names: Vec<&str> = self.needs().into_iter().map(ImageStatus::as_str).collect();
        match names.split_last() {
            None => "another status".to_string(),
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
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
    // 11 and 12 beyond the seed's list: current Debian cloud images (the network tests boot 12).
    (
        OsType::Linux,
        "debian",
        Architecture::X86_64,
        &["10.12", "11", "12"],
    ),
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
            (Linux, X86_64, "debian", "12"),
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
    fn exactly_the_spec_transitions_are_legal() {
        use ImageEvent as E;
        use ImageKind::{Base, Custom};
        use ImageNext::{Removed, Status};
        use ImageStatus as S;
        let legal = [
            (Base, S::Making, E::ContentVerified, Status(S::Available)),
            (Base, S::Making, E::Failed, Removed),
            (Base, S::Available, E::Delete, Status(S::Deleting)),
            (Base, S::Deleting, E::Destroy, Removed),
            (
                Custom,
                S::Importing,
                E::ContentVerified,
                Status(S::Available),
            ),
            (
                Custom,
                S::Creating,
                E::ContentVerified,
                Status(S::Available),
            ),
            (Custom, S::Importing, E::Failed, Status(S::ImportFailed)),
            (Custom, S::Creating, E::Failed, Status(S::ImportFailed)),
            (Custom, S::Available, E::Delete, Status(S::Deleting)),
            (Custom, S::ImportFailed, E::Delete, Status(S::Deleting)),
            (
                Custom,
                S::Deleting,
                E::Restore {
                    before: S::Available,
                },
                Status(S::Available),
            ),
            (
                Custom,
                S::Deleting,
                E::Restore {
                    before: S::ImportFailed,
                },
                Status(S::ImportFailed),
            ),
            (Custom, S::Deleting, E::Destroy, Removed),
        ];
        for kind in [Base, Custom] {
            for &from in S::ALL {
                for event in E::all() {
                    let want = legal
                        .iter()
                        .find(|(k, f, e, _)| *k == kind && *f == from && *e == event)
                        .map(|(_, _, _, to)| *to);
                    match (from.transition(kind, event), want) {
                        (Ok(to), Some(w)) => assert_eq!(to, w, "{kind} {from} --{event:?}-->"),
                        (Err(err), None) => {
                            assert_eq!((err.kind, err.from, err.event), (kind, from, event));
                            assert!(
                                !err.needs().contains(&from),
                                "{kind} {from} --{event:?}--> names a wrong need"
                            );
                        }
                        (got, want) => {
                            panic!("{kind} {from} --{event:?}-->: got {got:?}, want {want:?}")
                        }
                    }
                    if let Ok(ImageNext::Status(to)) = from.transition(kind, event) {
                        assert!(to.valid_for(kind), "{kind} {from} --{event:?}--> {to}");
                        assert!(from.valid_for(kind), "{kind} {from} is not {kind}'s");
                    }
                }
            }
        }
    }

    #[test]
    fn refusals_name_both_statuses() {
        let err = ImageStatus::Importing
            .transition(ImageKind::Custom, ImageEvent::Delete)
            .expect_err("an importing image cannot be deleted");
        assert_eq!(
            err.to_string(),
            "a custom image is importing; delete needs import_failed or available"
        );
        let err = ImageStatus::Making
            .transition(ImageKind::Base, ImageEvent::Delete)
            .expect_err("a base image being made cannot be deleted");
        assert_eq!(
            err.to_string(),
            "a base image is making; delete needs available"
        );
        assert!(ImageStatus::Importing.takes_content() && ImageStatus::Making.takes_content());
        assert!(ImageStatus::Creating.takes_content() && !ImageStatus::Available.takes_content());
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

    /// The whole table: visibility × owner (a base image has none) × viewer.
    #[test]
    fn visibility_table() {
        use Visibility::*;
        let (owner, other) = (Viewer::Tenant("ten-a"), Viewer::Tenant("ten-b"));
        // (visibility, owner, admin sees, owner tenant sees, other tenant sees)
        let table = [
            (Private, None, true, false, false),
            (Public, None, true, true, true),
            (Featured, None, true, true, true),
            (Private, Some("ten-a"), true, true, false),
            (Public, Some("ten-a"), true, true, true),
            (Featured, Some("ten-a"), true, true, true),
        ];
        for (v, own, admin_sees, owner_sees, other_sees) in table {
            assert_eq!(
                visible_to(v, own, Viewer::Admin),
                admin_sees,
                "{v} {own:?} admin"
            );
            assert_eq!(visible_to(v, own, owner), owner_sees, "{v} {own:?} owner");
            assert_eq!(visible_to(v, own, other), other_sees, "{v} {own:?} other");
        }
        assert_eq!(
            Visibility::shared_ones().collect::<Vec<_>>(),
            [Featured, Public]
        );
        for v in Visibility::ALL {
            assert!(v.settable_by(Viewer::Admin), "{v}");
            assert_eq!(v.settable_by(owner), *v != Featured, "{v}");
        }
    }
}
