//! The tls-handshake probe: a real TLS handshake with the API server in which the client offers
//! only some protocol versions and cipher suites, so what the server accepts is observed rather
//! than read from its flags.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, ring, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion};

use super::{Finding, api_down_message};
use crate::backend::{Backend, config_from_kubeconfig};
use crate::scenario::TlsHandshakeProbe;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The probe grades which versions and suites the server agrees to, not its certificate: it
/// accepts any certificate (so a CA mix-up cannot pass as a refused protocol) but still checks
/// the handshake signatures, so the handshake is a real one.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// "1.2" / "TLS1.2" / "VersionTLS12" to the rustls version.
pub fn version_of(name: &str) -> Option<&'static SupportedProtocolVersion> {
    let digits: String = name.chars().filter(char::is_ascii_digit).collect();
    match digits.as_str() {
        "12" => Some(&rustls::version::TLS12),
        "13" => Some(&rustls::version::TLS13),
        _ => None,
    }
}

/// A suite's IANA name; rustls spells the TLS 1.3 ones `TLS13_...`.
fn iana_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = suite.suite().as_str().unwrap_or("unknown");
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_string(),
    }
}

/// The IANA names of every suite the client can offer (what `cipher-suites` may name).
pub fn known_suites() -> Vec<String> {
    ring::default_provider().cipher_suites.iter().map(iana_name).collect()
}

/// What the server did with the client's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Completed with this version and suite.
    Accepted { version: String, suite: String },
    /// The server ended the handshake (an alert, or closing the connection).
    Refused(String),
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{0}")]
    Offer(String),
    #[error("connecting to {address}: {reason}")]
    Connect { address: String, reason: String },
}

fn client_config(versions: &[String], suites: &[String]) -> Result<ClientConfig, HandshakeError> {
    let mut chosen = Vec::new();
    for name in versions {
        chosen.push(version_of(name).ok_or_else(|| HandshakeError::Offer(format!("unknown TLS version {name:?}")))?);
    }
    let mut provider: CryptoProvider = ring::default_provider();
    if !suites.is_empty() {
        for name in suites {
            if !provider.cipher_suites.iter().any(|s| iana_name(s) == *name) {
                return Err(HandshakeError::Offer(format!("the client cannot offer cipher suite {name}")));
            }
        }
        provider.cipher_suites.retain(|s| suites.contains(&iana_name(s)));
    }
    let algorithms = provider.signature_verification_algorithms;
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&chosen)
        .map_err(|e| HandshakeError::Offer(format!("versions {} with these suites: {e}", versions.join(", "))))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(algorithms)))
        .with_no_client_auth();
    Ok(config)
}

/// One handshake with `host:port`, offering only `versions` and (if any) `suites`.
pub async fn handshake(
    host: &str,
    port: u16,
    versions: &[String],
    suites: &[String],
) -> Result<Handshake, HandshakeError> {
    let config = client_config(versions, suites)?;
    let address = format!("{host}:{port}");
    let server_name = ServerName::try_from(host.to_string())
        .map_err(|e| HandshakeError::Offer(format!("{host:?} is not a server name: {e}")))?;
    let connect_error = |reason: String| HandshakeError::Connect { address: address.clone(), reason };
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port))).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(connect_error(e.to_string())),
        Err(_) => return Err(connect_error(format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()))),
    };
    let connector = TlsConnector::from(Arc::new(config));
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(server_name, tcp)).await {
        Err(_) => Err(connect_error(format!("the handshake did not finish within {}s", HANDSHAKE_TIMEOUT.as_secs()))),
        Ok(Ok(stream)) => {
            let connection = stream.get_ref().1;
            let version = match connection.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
                other => format!("{other:?}"),
            };
            let suite = connection.negotiated_cipher_suite().map(|s| iana_name(&s)).unwrap_or_default();
            Ok(Handshake::Accepted { version, suite })
        }
        // After the TCP connection is up, any end of the handshake is the server's answer to
        // the offer: an alert (protocol_version, handshake_failure) or a closed connection.
        Ok(Err(e)) => {
            let reason = match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                Some(tls) => tls.to_string(),
                None => e.to_string(),
            };
            Ok(Handshake::Refused(reason))
        }
    }
}

fn describe_offer(probe: &TlsHandshakeProbe) -> String {
    let versions =
        probe.versions.iter().map(|v| format!("TLS {}", v.trim_start_matches("TLS").trim())).collect::<Vec<_>>();
    if probe.cipher_suites.is_empty() {
        format!("offering {} only", versions.join(" and "))
    } else {
        format!("offering {} with {} only", versions.join(" and "), probe.cipher_suites.join(", "))
    }
}

pub async fn tls_handshake(probe: &TlsHandshakeProbe, backend: &dyn Backend) -> Finding {
    let offer = describe_offer(probe);
    let expected = format!("a handshake {offer} to be {}", if probe.accepted { "accepted" } else { "refused" });
    let config = match config_from_kubeconfig(&backend.kubeconfig_path(), backend.name()).await {
        Ok(config) => config,
        Err(e) => return Finding::error(format!("no kubeconfig: {e}"), expected),
    };
    let url = &config.cluster_url;
    let host = url.host().unwrap_or("127.0.0.1").trim_start_matches('[').trim_end_matches(']').to_string();
    let port = url.port_u16().unwrap_or(443);
    match handshake(&host, port, &probe.versions, &probe.cipher_suites).await {
        Ok(Handshake::Accepted { version, suite }) => Finding::passed_if(
            probe.accepted,
            format!("the API server completed a handshake {offer}: {version}, {suite}"),
            expected,
        ),
        Ok(Handshake::Refused(reason)) => Finding::passed_if(
            !probe.accepted,
            format!("the API server refused a handshake {offer}: {reason}"),
            expected,
        ),
        Err(HandshakeError::Offer(reason)) => {
            Finding::error(format!("the probe's offer is not valid: {reason}"), expected)
        }
        Err(e @ HandshakeError::Connect { .. }) => {
            Finding::error(api_down_message(backend, &e.to_string()).await, expected)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;

    /// A rustls server on a free port that accepts only these versions (and suites, if any).
    async fn server(versions: &[&str], suites: &[&str]) -> u16 {
        let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("certificate");
        let cert = CertificateDer::from(key.cert.der().to_vec());
        let private = PrivateKeyDer::try_from(key.signing_key.serialize_der()).expect("key");
        let mut provider = ring::default_provider();
        if !suites.is_empty() {
            provider.cipher_suites.retain(|s| suites.contains(&iana_name(s).as_str()));
        }
        let versions: Vec<_> = versions.iter().map(|v| version_of(v).expect("version")).collect();
        let config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&versions)
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], private)
            .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        port
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn a_tls13_only_server_refuses_tls12_and_accepts_tls13() {
        let port = server(&["1.3"], &[]).await;
        let old = handshake("127.0.0.1", port, &strings(&["1.2"]), &[]).await.expect("an answer");
        assert!(matches!(old, Handshake::Refused(_)), "{old:?}");
        let new = handshake("127.0.0.1", port, &strings(&["1.3"]), &[]).await.expect("an answer");
        assert!(matches!(&new, Handshake::Accepted { version, .. } if version == "TLS 1.3"), "{new:?}");
        // Offering both, the server picks 1.3.
        let both = handshake("127.0.0.1", port, &strings(&["1.2", "1.3"]), &[]).await.expect("an answer");
        assert!(matches!(&both, Handshake::Accepted { version, .. } if version == "TLS 1.3"), "{both:?}");
    }

    #[tokio::test]
    async fn a_server_with_named_suites_refuses_the_others() {
        let allowed = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";
        let port = server(&["1.2"], &[allowed]).await;
        let other = handshake(
            "127.0.0.1",
            port,
            &strings(&["1.2"]),
            &strings(&["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]),
        )
        .await
        .expect("an answer");
        assert!(matches!(other, Handshake::Refused(_)), "{other:?}");
        let named = handshake("127.0.0.1", port, &strings(&["TLS1.2"]), &strings(&[allowed])).await.expect("an answer");
        assert_eq!(named, Handshake::Accepted { version: "TLS 1.2".into(), suite: allowed.into() });
    }

    #[tokio::test]
    async fn nothing_listening_is_an_error_not_a_refusal() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let answer = handshake("127.0.0.1", port, &strings(&["1.3"]), &[]).await;
        assert!(matches!(answer, Err(HandshakeError::Connect { .. })), "{answer:?}");
    }

    #[test]
    fn offers_are_checked() {
        assert!(client_config(&strings(&["1.1"]), &[]).is_err());
        assert!(client_config(&strings(&["1.2"]), &strings(&["TLS_RSA_WITH_RC4_128_SHA"])).is_err());
        // A TLS 1.3 suite with only TLS 1.2 offered cannot make a handshake.
        assert!(client_config(&strings(&["1.2"]), &strings(&["TLS_AES_128_GCM_SHA256"])).is_err());
        assert!(known_suites().contains(&"TLS_AES_128_GCM_SHA256".to_string()));
        assert!(version_of("VersionTLS13").is_some());
    }
}
