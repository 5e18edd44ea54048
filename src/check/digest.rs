//! File digests and published checksum lists. Pure functions.
//!
//! Release pages publish checksums in three shapes, and a learner may be handed any of them:
//! `sha512sum` output (`<hex>  <name>`, `<hex> *<name>` in binary mode), the BSD tag form
//! (`SHA512 (<name>) = <hex>`, what `shasum --tag` and macOS print), and one bare digest per
//! file as Kubernetes publishes (`kubectl.sha512` holds only the hex).

use std::path::Path;

use sha2::{Digest, Sha256, Sha512};

use crate::scenario::DigestAlgorithm;

pub fn hex_digest(algorithm: DigestAlgorithm, bytes: &[u8]) -> String {
    match algorithm {
        DigestAlgorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
        DigestAlgorithm::Sha512 => hex::encode(Sha512::digest(bytes)),
    }
}

pub fn name(algorithm: DigestAlgorithm) -> &'static str {
    match algorithm {
        DigestAlgorithm::Sha256 => "SHA-256",
        DigestAlgorithm::Sha512 => "SHA-512",
    }
}

/// Hex characters of a digest.
pub fn hex_len(algorithm: DigestAlgorithm) -> usize {
    match algorithm {
        DigestAlgorithm::Sha256 => 64,
        DigestAlgorithm::Sha512 => 128,
    }
}

/// Whether `text` is a digest of this algorithm written in hex (either case).
pub fn is_hex_digest(algorithm: DigestAlgorithm, text: &str) -> bool {
    text.len() == hex_len(algorithm) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The digests (lowercase) a checksum list at `list_path` gives for the file at `file_path`.
/// An entry names the file by its path relative to the list's folder (`./` allowed) or by its
/// absolute path; a list that is one bare digest applies to whichever file is checked against
/// it. Lines in no known shape are ignored, as `sha512sum -c` ignores them.
pub fn listed_for(text: &str, algorithm: DigestAlgorithm, list_path: &Path, file_path: &Path) -> Vec<String> {
    let folder = list_path.parent().unwrap_or(Path::new("/"));
    let names_file = |name: &str| {
        let name = name.trim();
        let path = Path::new(name);
        if path.is_absolute() { path == file_path } else { folder.join(name.trim_start_matches("./")) == file_path }
    };
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    if let [only] = lines.as_slice()
        && is_hex_digest(algorithm, only)
    {
        return vec![only.to_ascii_lowercase()];
    }
    let tag = match algorithm {
        DigestAlgorithm::Sha256 => "SHA256",
        DigestAlgorithm::Sha512 => "SHA512",
    };
    let mut found = Vec::new();
    for line in lines {
        if let Some(rest) = line.strip_prefix(tag).map(str::trim_start)
            && let Some(rest) = rest.strip_prefix('(')
            && let Some((name, digest)) = rest.rsplit_once(')')
        {
            let digest = digest.trim_start().trim_start_matches('=').trim();
            if is_hex_digest(algorithm, digest) && names_file(name) {
                found.push(digest.to_ascii_lowercase());
            }
            continue;
        }
        let (digest, rest) = line.split_at(line.find(char::is_whitespace).unwrap_or(line.len()));
        if !is_hex_digest(algorithm, digest) {
            continue;
        }
        let name = rest.trim_start();
        let name = name.strip_prefix('*').unwrap_or(name);
        if !name.is_empty() && names_file(name) {
            found.push(digest.to_ascii_lowercase());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALG: DigestAlgorithm = DigestAlgorithm::Sha512;

    fn digest_of(text: &str) -> String {
        hex_digest(ALG, text.as_bytes())
    }

    fn listed(list: &str, file: &str) -> Vec<String> {
        listed_for(list, ALG, Path::new("/opt/release/SHA512SUMS"), Path::new(file))
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            hex_digest(DigestAlgorithm::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(digest_of("abc").starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn every_published_shape_names_the_file() {
        let d = digest_of("kubectl");
        let upper = d.to_ascii_uppercase();
        for list in [
            format!("{d}  kubectl\n"),
            format!("{d} *kubectl\n"),
            format!("{d}  ./kubectl\n"),
            format!("{d}  /opt/release/kubectl\n"),
            format!("SHA512 (kubectl) = {d}\n"),
            format!("SHA512(kubectl)= {upper}\n"),
            format!("{d}\n"),
            format!("# published 2026-01-02\n\n{d}  kubectl\n"),
        ] {
            assert_eq!(listed(&list, "/opt/release/kubectl"), vec![d.clone()], "{list}");
        }
    }

    #[test]
    fn near_misses_list_nothing() {
        let d = digest_of("kubectl");
        for list in [
            format!("{d}  kubelet\n"),
            format!("{d}  bin/kubectl\n"),
            format!("{d}  /usr/bin/kubectl\n"),
            format!("SHA256 (kubectl) = {}\n", hex_digest(DigestAlgorithm::Sha256, b"kubectl")),
            // a SHA-256 where a SHA-512 belongs
            format!("{}  kubectl\n", hex_digest(DigestAlgorithm::Sha256, b"kubectl")),
            format!("{}  kubectl\n", &d[..120]),
            "kubectl\n".to_string(),
        ] {
            assert!(listed(&list, "/opt/release/kubectl").is_empty(), "{list}");
        }
    }

    #[test]
    fn a_bare_digest_only_counts_alone() {
        let a = digest_of("a");
        let b = digest_of("b");
        assert_eq!(listed(&format!("{a}\n"), "/opt/release/anything"), vec![a.clone()]);
        assert!(listed(&format!("{a}\n{b}\n"), "/opt/release/anything").is_empty());
    }

    #[test]
    fn every_entry_for_a_name_is_returned() {
        let a = digest_of("a");
        let b = digest_of("b");
        assert_eq!(listed(&format!("{a}  kubelet\n{b}  kubelet\n"), "/opt/release/kubelet"), vec![a, b]);
    }
}
