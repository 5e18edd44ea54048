//! SBOMs read as data: SPDX JSON and CycloneDX JSON become one shape, so a check asks "which
//! packages does it list" the same way whatever format (and whichever tool) wrote it.
//!
//! `{"format": "spdx"|"cyclonedx", "spec_version": "SPDX-2.3"|"1.6", "name": ...,
//!   "packages": [{"name": ..., "version": ..., "purl": ...}]}`. CycloneDX components nest;
//! they are listed flat. syft's own JSON (`-o json`), SPDX tag-value and CycloneDX XML are not
//! accepted, and the error says which one the file is.

use serde_json::{Value, json};

/// The SBOM in `text`, normalized; the error says what the file is instead.
pub fn parse(text: &str) -> Result<Value, String> {
    let document: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Err(not_json(text, &e)),
    };
    if let Some(version) = document.get("spdxVersion").and_then(Value::as_str) {
        return Ok(spdx(&document, version));
    }
    if document.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        return Ok(cyclonedx(&document));
    }
    if document.get("artifacts").is_some() && document.pointer("/descriptor/name").is_some() {
        return Err("it is syft's own JSON format (-o json), not SPDX or CycloneDX".into());
    }
    Err("it is JSON, but neither SPDX (no spdxVersion) nor CycloneDX (no bomFormat: CycloneDX)".into())
}

fn not_json(text: &str, error: &serde_json::Error) -> String {
    let start = text.trim_start();
    if start.starts_with("SPDXVersion:") {
        "it is SPDX tag-value text, not SPDX JSON".into()
    } else if start.starts_with("<?xml") || start.starts_with("<bom") {
        "it is XML, not CycloneDX JSON".into()
    } else if start.starts_with("NAME ") {
        "it is syft's table output, not an SBOM format".into()
    } else {
        format!("it is not JSON: {error}")
    }
}

fn spdx(document: &Value, version: &str) -> Value {
    let packages: Vec<Value> = document
        .get("packages")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|p| {
                    let purl = p.get("externalRefs").and_then(Value::as_array).and_then(|refs| {
                        refs.iter().find(|r| r.get("referenceType").and_then(Value::as_str) == Some("purl"))
                    });
                    package(p.get("name"), p.get("versionInfo"), purl.and_then(|r| r.get("referenceLocator")))
                })
                .collect()
        })
        .unwrap_or_default();
    json!({"format": "spdx", "spec_version": version, "name": document.get("name"), "packages": packages})
}

fn cyclonedx(document: &Value) -> Value {
    fn walk(components: Option<&Value>, out: &mut Vec<Value>) {
        for c in components.and_then(Value::as_array).into_iter().flatten() {
            out.push(package(c.get("name"), c.get("version"), c.get("purl")));
            walk(c.get("components"), out);
        }
    }
    let mut packages = Vec::new();
    walk(document.get("components"), &mut packages);
    json!({
        "format": "cyclonedx",
        "spec_version": document.get("specVersion"),
        "name": document.pointer("/metadata/component/name"),
        "packages": packages,
    })
}

fn package(name: Option<&Value>, version: Option<&Value>, purl: Option<&Value>) -> Value {
    json!({"name": name, "version": version, "purl": purl})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Outcome, fields};
    use crate::scenario::{Expectation, FieldCondition};

    /// What syft 1.57 writes for a docker archive with `-o spdx-json` (trimmed to what matters).
    const SPDX: &str = r#"{
      "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
      "name": "registry.local/storefront/frontend:2.3",
      "packages": [
        {"name": "musl", "SPDXID": "SPDXRef-Package-apk-musl-1", "versionInfo": "1.2.5-r0",
         "externalRefs": [{"referenceCategory": "SECURITY", "referenceType": "cpe23Type", "referenceLocator": "cpe:2.3:a:musl:musl:1.2.5-r0:*:*:*:*:*:*:*"},
                          {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"}]},
        {"name": "busybox", "SPDXID": "SPDXRef-Package-apk-busybox-2", "versionInfo": "1.36.1-r29"},
        {"name": "registry.local/storefront/frontend", "SPDXID": "SPDXRef-DocumentRoot-Image-x", "versionInfo": "sha256:ab"}
      ]
    }"#;

    const CYCLONEDX: &str = r#"{
      "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json", "bomFormat": "CycloneDX", "specVersion": "1.6",
      "metadata": {"component": {"type": "container", "name": "registry.local/storefront/frontend:2.3"}},
      "components": [
        {"type": "library", "name": "musl", "version": "1.2.5-r0", "purl": "pkg:apk/alpine/musl@1.2.5-r0"},
        {"type": "library", "name": "busybox", "version": "1.36.1-r29",
         "components": [{"type": "library", "name": "ssl_client", "version": "1.36.1-r29"}]},
        {"type": "operating-system", "name": "alpine", "version": "3.20.3"}
      ]
    }"#;

    fn cond(path: &str, expect: Expectation) -> FieldCondition {
        FieldCondition { path: path.into(), label: None, expect, any: false }
    }

    /// The checks the understand-supply-chain scenario makes of the SBOM of its alpine image.
    fn frontend_checks() -> Vec<FieldCondition> {
        vec![
            cond("$.format", Expectation::OneOf(vec![json!("spdx"), json!("cyclonedx")])),
            cond("$.packages[?@.name == 'musl'].version", Expectation::Equals(json!("1.2.5-r0"))),
            cond("$.packages[?@.name == 'busybox'].version", Expectation::Equals(json!("1.36.1-r29"))),
            cond("$.packages[?@.name == 'libssl3'].name", Expectation::Absent(true)),
        ]
    }

    #[test]
    fn spdx_and_cyclonedx_read_into_one_shape_and_pass_the_same_checks() {
        let spdx = parse(SPDX).unwrap();
        assert_eq!(spdx["format"], "spdx");
        assert_eq!(spdx["spec_version"], "SPDX-2.3");
        assert_eq!(spdx["packages"][0]["purl"], "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3");
        let cdx = parse(CYCLONEDX).unwrap();
        assert_eq!(cdx["format"], "cyclonedx");
        assert_eq!(cdx["name"], "registry.local/storefront/frontend:2.3");
        let names: Vec<&str> =
            cdx["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["musl", "busybox", "ssl_client", "alpine"], "nested components are listed too");
        for sbom in [&spdx, &cdx] {
            let finding = fields::evaluate_all(sbom, &frontend_checks(), "sbom");
            assert_eq!(finding.outcome, Outcome::Pass, "{finding:?}");
        }
        // Compact JSON, as `-o spdx-json` writes it, and pretty JSON read the same.
        let compact = serde_json::to_string(&serde_json::from_str::<Value>(SPDX).unwrap()).unwrap();
        assert_eq!(parse(&compact).unwrap(), spdx);
    }

    #[test]
    fn near_misses_fail_and_say_why() {
        // The SBOM of another image: its packages, not the asked one's.
        let other = SPDX.replace("\"musl\"", "\"libssl3\"");
        let finding = fields::evaluate_all(&parse(&other).unwrap(), &frontend_checks(), "sbom");
        assert_eq!(finding.outcome, Outcome::Fail, "{finding:?}");
        // The right package at another version.
        let older = CYCLONEDX.replace("\"version\": \"1.2.5-r0\"", "\"version\": \"1.2.4-r2\"");
        let finding = fields::evaluate_all(&parse(&older).unwrap(), &frontend_checks(), "sbom");
        assert_eq!(finding.outcome, Outcome::Fail, "{finding:?}");
        assert!(finding.observed.contains("1.2.4-r2"), "{}", finding.observed);
        // An SPDX document with no packages at all.
        let empty = parse(r#"{"spdxVersion": "SPDX-2.3", "name": "x"}"#).unwrap();
        assert_eq!(fields::evaluate_all(&empty, &frontend_checks(), "sbom").outcome, Outcome::Fail);

        let syft_json = r#"{"artifacts": [{"name": "musl", "version": "1.2.5-r0"}], "descriptor": {"name": "syft", "version": "1.57.1"}, "schema": {}}"#;
        assert_eq!(parse(syft_json).unwrap_err(), "it is syft's own JSON format (-o json), not SPDX or CycloneDX");
        assert_eq!(
            parse("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n").unwrap_err(),
            "it is SPDX tag-value text, not SPDX JSON"
        );
        assert_eq!(parse("<?xml version=\"1.0\"?><bom/>").unwrap_err(), "it is XML, not CycloneDX JSON");
        assert_eq!(
            parse("NAME     VERSION   TYPE\nmusl     1.2.5-r0  apk\n").unwrap_err(),
            "it is syft's table output, not an SBOM format"
        );
        assert!(parse(r#"{"bomFormat": "SPDX"}"#).unwrap_err().starts_with("it is JSON, but neither SPDX"));
        assert!(parse("").unwrap_err().starts_with("it is not JSON: "));
    }
}
