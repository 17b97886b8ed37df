//! TLS for the API when it is reachable beyond this machine. The node makes a self-signed
//! certificate once (kept in its data directory) and prints its **pin**,
//! `blake3:<hex of BLAKE3(certificate DER)>`; clients check the certificate by that pin alone
//! (given by the school's admin, or taken at first contact by `staffroom connect` and kept),
//! never by a certificate authority.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsAcceptor;

use crate::config::DataDir;
use crate::secret_file;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make the API's certificate: {0}")]
    Generate(String),
    #[error("cannot read or write {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("the API's TLS settings are invalid: {0}")]
    Config(String),
}

/// The node's API certificate and its private key.
pub struct ApiCert {
    pub cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl ApiCert {
    pub fn pin(&self) -> String {
        pin_of(&self.cert_der)
    }
}

/// The pin of a certificate: what clients compare.
pub fn pin_of(cert_der: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(cert_der).to_hex())
}

/// The certificate in `data` (`api.cert`, and its key in `api.cert.key`, mode 0600), made
/// if there is none.
pub fn load_or_create(data: &DataDir) -> Result<ApiCert, TlsError> {
    let (cert_path, key_path) = (
        data.path().join("api.cert"),
        data.path().join("api.cert.key"),
    );
    let io_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| TlsError::Io { path, source }
    };
    if cert_path.exists() {
        let cert_der = secret_file::read(&cert_path).map_err(io_err(&cert_path))?;
        let key_der = secret_file::read(&key_path).map_err(io_err(&key_path))?;
        return Ok(ApiCert { cert_der, key_der });
    }
    let made = rcgen::generate_simple_self_signed(vec!["staffroom-node".to_owned()])
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let cert = ApiCert {
        cert_der: made.cert.der().to_vec(),
        key_der: made.key_pair.serialize_der(),
    };
    secret_file::write(&key_path, &cert.key_der).map_err(io_err(&key_path))?;
    secret_file::write(&cert_path, &cert.cert_der).map_err(io_err(&cert_path))?;
    Ok(cert)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The API's TLS acceptor for `cert` (handshakes run on each connection's task: `listen`).
pub fn acceptor(cert: &ApiCert) -> Result<TlsAcceptor, TlsError> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone()));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert.cert_der.clone())], key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A client TLS configuration that accepts exactly the certificate with `pin` (or, with
/// `None`, any certificate — first contact — recording it in `seen`).
pub fn client_config(
    pin: Option<String>,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
) -> rustls::ClientConfig {
    let provider = provider();
    let verifier = PinVerifier {
        pin,
        seen,
        provider: provider.clone(),
    };
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth()
}

#[derive(Debug)]
struct PinVerifier {
    pin: Option<String>,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.to_vec());
        }
        match &self.pin {
            Some(pin) if *pin != pin_of(end_entity) => Err(rustls::Error::General(format!(
                "the node's certificate is not the pinned one ({pin})"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
