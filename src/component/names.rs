//! Interface names and their versions: `ns:pkg/iface@1.2.3`, matched
//! semver-compatibly (a guest importing `@0.2.3` links to a host `@0.2.12`).

/// A parsed `major.minor.patch[-pre]` version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

/// Splits `ns:pkg/iface@1.2.3` into the name and its version.
pub fn split_version(name: &str) -> (&str, Option<Version>) {
    let Some((base, v)) = name.rsplit_once('@') else {
        return (name, None);
    };
    let (nums, pre) = v.split_once('-').unwrap_or((v, ""));
    let mut parts = nums.split('.').map(|p| p.parse::<u64>());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch)), None) => (
            base,
            Some(Version {
                major,
                minor,
                patch,
                pre: pre.to_string(),
            }),
        ),
        _ => (name, None),
    }
}

/// Semver compatibility as Cargo defines it: same major (and same minor while
/// the major is 0); prereleases match only exactly.
pub fn compatible(want: &Version, have: &Version) -> bool {
    if !want.pre.is_empty() || !have.pre.is_empty() {
        return want == have;
    }
    want.major == have.major && (want.major != 0 || want.minor == have.minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        split_version(&format!("x:y/z@{s}")).1.unwrap()
    }

    #[test]
    fn semver_compatibility() {
        assert!(compatible(&v("0.2.3"), &v("0.2.12")));
        assert!(compatible(&v("0.2.12"), &v("0.2.0")));
        assert!(!compatible(&v("0.2.3"), &v("0.3.0")));
        assert!(compatible(&v("1.0.0"), &v("1.4.2")));
        assert!(!compatible(&v("1.0.0"), &v("2.0.0")));
        assert!(!compatible(&v("0.2.0-rc-1"), &v("0.2.0")));
        assert_eq!(split_version("wasi:io/streams@0.2.3").0, "wasi:io/streams");
        assert_eq!(split_version("plain").1, None);
    }
}
