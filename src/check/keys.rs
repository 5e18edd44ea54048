//! Private keys as `kubectl create secret tls` (Go's `tls.X509KeyPair`) reads them: the first
//! PEM block labelled `PRIVATE KEY` or `... PRIVATE KEY` (other blocks, such as `EC PARAMETERS`
//! before it, are skipped), holding PKCS#1 RSA, PKCS#8 (RSA, ECDSA, Ed25519) or SEC1 ECDSA
//! whatever its label says; its public half is derived and compared with a certificate's.

use x509_parser::pem::Pem;

const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// A public key, in the terms two keys are compared by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Modulus and exponent, without leading zeros.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The curve's OID and the uncompressed point.
    Ec {
        curve: Vec<u8>,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

/// One DER element: (tag, contents, rest).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let bad = || "truncated DER".to_string();
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
    let length = if first < 0x80 {
        first as usize
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return Err(bad());
        }
        let length = rest[..count].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        rest = &rest[count..];
        length
    };
    if rest.len() < length {
        return Err(bad());
    }
    Ok((tag, &rest[..length], &rest[length..]))
}

fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), String> {
    let (tag, contents, rest) = tlv(input)?;
    if tag != want {
        return Err(format!("DER tag {tag:#x} where {want:#x} was expected"));
    }
    Ok((contents, rest))
}

fn unsigned(integer: &[u8]) -> Vec<u8> {
    let start = integer.iter().position(|b| *b != 0).unwrap_or(integer.len());
    integer[start..].to_vec()
}

/// PKCS#1 RSAPrivateKey: version 0, n, e, d, p, q, ...
fn pkcs1(der: &[u8]) -> Result<PublicKey, String> {
    let (body, _) = expect(der, 0x30)?;
    let (version, rest) = expect(body, 0x02)?;
    if version != [0] && version != [1] {
        return Err("not PKCS#1".into());
    }
    let (n, rest) = expect(rest, 0x02)?;
    let (e, rest) = expect(rest, 0x02)?;
    let (_d, rest) = expect(rest, 0x02)?;
    expect(rest, 0x02)?;
    Ok(PublicKey::Rsa { n: unsigned(n), e: unsigned(e) })
}

/// SEC1 ECPrivateKey: version 1, private key, [0] curve, [1] public key. `curve` is the one a
/// PKCS#8 header named, if any.
fn sec1(der: &[u8], curve: Option<&[u8]>) -> Result<PublicKey, String> {
    let (body, _) = expect(der, 0x30)?;
    let (version, mut rest) = expect(body, 0x02)?;
    if version != [1] {
        return Err("not SEC1".into());
    }
    let (private, after) = expect(rest, 0x04)?;
    rest = after;
    let mut named = curve.map(<[u8]>::to_vec);
    let mut public = None;
    while !rest.is_empty() {
        let (tag, contents, after) = tlv(rest)?;
        rest = after;
        match tag {
            0xa0 => named = Some(expect(contents, 0x06)?.0.to_vec()),
            0xa1 => {
                let (bits, _) = expect(contents, 0x03)?;
                public = bits.split_first().map(|(_, point)| point.to_vec());
            }
            _ => {}
        }
    }
    let curve = named.ok_or("the EC key names no curve")?;
    let public = public.ok_or("the EC key carries no public key")?;
    // Where ring knows the curve, prove the public key belongs to the private one.
    let (algorithm, size) = match curve.as_slice() {
        P256 => (Some(&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING), 32),
        P384 => (Some(&ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING), 48),
        _ => (None, 0usize),
    };
    if let Some(algorithm) = algorithm {
        let mut scalar = vec![0u8; size.saturating_sub(private.len())];
        scalar.extend_from_slice(private);
        let rng = ring::rand::SystemRandom::new();
        ring::signature::EcdsaKeyPair::from_private_key_and_public_key(algorithm, &scalar, &public, &rng)
            .map_err(|e| format!("the EC key's public part does not belong to its private part: {e}"))?;
    }
    Ok(PublicKey::Ec { curve, point: public })
}

/// PKCS#8 PrivateKeyInfo: version, algorithm, private key (and optional attributes).
fn pkcs8(der: &[u8]) -> Result<PublicKey, String> {
    let (body, _) = expect(der, 0x30)?;
    let (_version, rest) = expect(body, 0x02)?;
    let (algorithm, rest) = expect(rest, 0x30)?;
    let (oid, parameters) = expect(algorithm, 0x06)?;
    let (private, _) = expect(rest, 0x04)?;
    match oid {
        RSA => pkcs1(private),
        EC => {
            let curve = expect(parameters, 0x06).ok().map(|(c, _)| c);
            sec1(private, curve)
        }
        ED25519 => {
            let (seed, _) = expect(private, 0x04)?;
            let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
                .map_err(|e| format!("not an Ed25519 key: {e}"))?;
            use ring::signature::KeyPair;
            Ok(PublicKey::Ed25519(pair.public_key().as_ref().to_vec()))
        }
        _ => Err("PKCS#8 for an algorithm other than RSA, ECDSA or Ed25519".into()),
    }
}

/// The public half of the private key in a PEM text, read as `tls.X509KeyPair` reads it.
pub fn public_key_of(pem_text: &[u8]) -> Result<PublicKey, String> {
    let mut labels = Vec::new();
    for block in Pem::iter_from_buffer(pem_text) {
        let block = block.map_err(|e| format!("not PEM: {e}"))?;
        if block.label == "PRIVATE KEY" || block.label.ends_with(" PRIVATE KEY") {
            let der = &block.contents;
            let mut problems = Vec::new();
            for attempt in [pkcs1(der), pkcs8(der), sec1(der, None)] {
                match attempt {
                    Ok(key) => return Ok(key),
                    Err(problem) => problems.push(problem),
                }
            }
            // A key of a known shape that is wrong inside says so; otherwise it has no known shape.
            return Err(problems.into_iter().find(|p| p.starts_with("the ")).unwrap_or_else(|| {
                format!("the {} block is not an unencrypted PKCS#1, PKCS#8 or SEC1 key", block.label)
            }));
        }
        labels.push(block.label);
    }
    if labels.is_empty() {
        Err("no PEM block".into())
    } else {
        Err(format!("no PRIVATE KEY block (found {})", labels.join(", ")))
    }
}

/// A certificate's public key, from its SubjectPublicKeyInfo.
pub fn certificate_key(algorithm: &[u8], parameters: Option<&[u8]>, key: &[u8]) -> Result<PublicKey, String> {
    match algorithm {
        RSA => {
            let (body, _) = expect(key, 0x30)?;
            let (n, rest) = expect(body, 0x02)?;
            let (e, _) = expect(rest, 0x02)?;
            Ok(PublicKey::Rsa { n: unsigned(n), e: unsigned(e) })
        }
        EC => Ok(PublicKey::Ec { curve: parameters.unwrap_or_default().to_vec(), point: key.to_vec() }),
        ED25519 => Ok(PublicKey::Ed25519(key.to_vec())),
        _ => Err("the certificate's key is not RSA, ECDSA or Ed25519".into()),
    }
}
