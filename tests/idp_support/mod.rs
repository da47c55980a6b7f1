//! A real identity provider for the interop tests: panva's oidc-provider (`tests/idp`),
//! started with Node on 127.0.0.1, and a client of its token endpoint.
//!
//! Where the install (a directory holding `node_modules/oidc-provider`) is found:
//! `MESHGUARD_IDP_DIR`, which `.ci/run` sets after installing it; else
//! `<target dir>/oidc-provider`, where `.ci/run` installs it by default; else `tests/idp`
//! after an `npm ci` there. Without Node or an install, [`Idp::shared`] prints one line
//! saying why and returns `None`, and the test returns early: Rust has no skipped status, so
//! the tests are named `interop_*` for that line to be read next to them. With
//! `MESHGUARD_IDP_DIR` set, anything missing or broken fails the test instead: CI that
//! installed the IdP must not pass by skipping it.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// The IdP script. It runs with the install as working directory (`node --eval`), so its
/// `import 'oidc-provider'` resolves there and the script that runs is always this one,
/// never a stale copy inside the install.
const SCRIPT: &str = include_str!("../idp/idp.mjs");
/// The manifest pinning oidc-provider's version; an install of another version is refused.
const MANIFEST: &str = include_str!("../idp/package.json");
/// How long Node may take to print its ready line: a liveness bound for a loaded machine.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// The most of Node's standard error kept for failure messages.
const MAX_STDERR: usize = 64 * 1024;

/// A running oidc-provider; the process is killed when this is dropped (and exits by itself
/// when the test process ends, since its standard input then closes).
pub struct Idp {
    child: Child,
    /// Held open: the IdP exits when it closes.
    _stdin: ChildStdin,
    issuer: String,
    clients: Value,
    stderr: Arc<Mutex<String>>,
    /// The thread collecting `stderr`, joined when the IdP died, to report all it said.
    stderr_reader: Option<JoinHandle<()>>,
}

/// A client registered at the IdP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdpClient {
    /// `svc-basic`: client_credentials, secret in an HTTP Basic `Authorization` header.
    Basic,
    /// `svc-post`: client_credentials, secret in the form body.
    Post,
    /// `svc-nonce`: as [`Basic`](Self::Basic), but its DPoP proofs must carry a nonce the IdP
    /// gave (`use_dpop_nonce`, RFC 9449 §8).
    Nonce,
    /// `rs`: a resource server that may introspect any token and obtain none.
    Introspector,
    /// `svc-exchange`: client_credentials and RFC 8693 token exchange, secret in the form
    /// body.
    Exchanger,
}

/// A token endpoint's successful answer.
#[derive(Clone, Debug)]
pub struct Issued {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

impl Idp {
    /// The IdP shared by the tests that run at the same time, started if none is running;
    /// `None` (after one line on standard error) when the tests are to be skipped.
    ///
    /// # Panics
    ///
    /// When the IdP is installed (or `MESHGUARD_IDP_DIR` says it is) but cannot be started.
    pub fn shared() -> Option<Arc<Idp>> {
        static LOCATED: OnceLock<Located> = OnceLock::new();
        static SHARED: Mutex<Weak<Idp>> = Mutex::new(Weak::new());
        let located = LOCATED.get_or_init(|| {
            let located = locate();
            if let Located::Skip(why) = &located {
                skip_note(why);
            }
            located
        });
        let Located::Dir(dir) = located else {
            return None;
        };
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(idp) = shared.upgrade() {
            return Some(idp);
        }
        let idp = Arc::new(Idp::start(dir));
        *shared = Arc::downgrade(&idp);
        Some(idp)
    }

    /// Starts the IdP from the install in `dir` and waits for its ready line.
    fn start(dir: &Path) -> Idp {
        let mut child = Command::new("node")
            .current_dir(dir)
            .args(["--input-type=module", "--eval", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node in {}: {e}", dir.display()));
        let stdin = child.stdin.take().unwrap();
        let (stderr, stderr_reader) = drain_stderr(child.stderr.take().unwrap());
        let lines = forward_lines(child.stdout.take().unwrap());
        let mut idp = Idp {
            child,
            _stdin: stdin,
            issuer: String::new(),
            clients: Value::Null,
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        let ready = idp.wait_ready(&lines);
        idp.issuer = ready["issuer"].as_str().unwrap().to_owned();
        idp.clients = ready["clients"].clone();
        idp
    }

    /// The first stdout line that is the ready object; earlier lines are kept for the
    /// message should it never come.
    fn wait_ready(&mut self, lines: &Receiver<String>) -> Value {
        let deadline = Instant::now() + READY_WITHIN;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => match serde_json::from_str::<Value>(&line) {
                    Ok(ready) if ready["ready"] == true => return ready,
                    _ => seen.push(line),
                },
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "oidc-provider printed no ready line within {READY_WITHIN:?}; stdout: {seen:?}; stderr: {}",
                        self.stderr()
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    if let Some(reader) = self.stderr_reader.take() {
                        let _ = reader.join();
                    }
                    panic!(
                        "oidc-provider exited before it was ready ({status:?}); stdout: {seen:?}; stderr: {}",
                        self.stderr()
                    );
                }
            }
        }
    }

    /// `http://127.0.0.1:PORT`, the IdP's issuer identifier and discovery base.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The IdP's OpenID Connect discovery document.
    pub async fn discovery(&self) -> Value {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let response = http_client()
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}; IdP stderr: {}", self.stderr()));
        assert_eq!(response.status().as_u16(), 200, "GET {url}");
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    pub fn introspection_endpoint(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// The client's id and its secret (made by the IdP at start-up).
    pub fn credentials(&self, client: IdpClient) -> (&str, &str) {
        let entry = &self.clients[match client {
            IdpClient::Basic => "basic",
            IdpClient::Post => "post",
            IdpClient::Nonce => "nonce",
            IdpClient::Introspector => "introspector",
            IdpClient::Exchanger => "exchanger",
        }];
        (
            entry["id"].as_str().unwrap(),
            entry["secret"].as_str().unwrap(),
        )
    }

    /// What Node wrote to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// An access token for `resource` (RFC 8707) with scope `read`, from the
    /// client_credentials grant with `client` authenticating as it is registered to.
    ///
    /// # Panics
    ///
    /// When the IdP does not issue one.
    pub async fn access_token(&self, client: IdpClient, resource: &str) -> Issued {
        self.issue(client, resource, &[]).await
    }

    /// As [`access_token`](Self::access_token), with the DPoP `proof` of the token request
    /// (RFC 9449 §5): the IdP binds the token to the proof's key.
    ///
    /// # Panics
    ///
    /// When the IdP does not issue one.
    pub async fn dpop_access_token(
        &self,
        client: IdpClient,
        resource: &str,
        proof: &str,
    ) -> Issued {
        self.issue(client, resource, &[("dpop", proof)]).await
    }

    async fn issue(&self, client: IdpClient, resource: &str, headers: &[(&str, &str)]) -> Issued {
        let (status, body, _) = self.token_request(client, resource, headers).await;
        assert_eq!(status, 200, "token endpoint answered {status}: {body}");
        Issued {
            access_token: body["access_token"].as_str().unwrap().to_owned(),
            token_type: body["token_type"].as_str().unwrap().to_owned(),
            expires_in: body["expires_in"].as_i64().unwrap(),
        }
    }

    /// A client_credentials request for `resource` with scope `read` and these extra
    /// request headers; the status, the JSON body and the response headers, whatever they are.
    pub async fn token_request(
        &self,
        client: IdpClient,
        resource: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value, HeaderMap) {
        let form = [
            ("grant_type", "client_credentials"),
            ("resource", resource),
            ("scope", "read"),
        ];
        self.post_form_with_headers(client, &self.token_endpoint(), &form, headers)
            .await
    }

    /// POSTs `form` to `url` authenticated as `client` (`client_secret_basic` or
    /// `client_secret_post`, as the client is registered); the status and the JSON body.
    pub async fn post_form(
        &self,
        client: IdpClient,
        url: &str,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let (status, body, _) = self.post_form_with_headers(client, url, form, &[]).await;
        (status, body)
    }

    /// [`post_form`](Self::post_form) with more request headers, such as a `DPoP` proof; the
    /// response headers too.
    pub async fn post_form_with_headers(
        &self,
        client: IdpClient,
        url: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, Value, HeaderMap) {
        let (id, secret) = self.credentials(client);
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = http_client().post(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        match client {
            IdpClient::Post | IdpClient::Exchanger => {
                fields.extend([("client_id", id), ("client_secret", secret)]);
            }
            // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined.
            IdpClient::Basic | IdpClient::Nonce | IdpClient::Introspector => {
                let pair = format!("{}:{}", form_encode(id), form_encode(secret));
                request =
                    request.header("authorization", format!("Basic {}", STANDARD.encode(pair)));
            }
        }
        let body = fields
            .iter()
            .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let response = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}; IdP stderr: {}", self.stderr()));
        let status = response.status().as_u16();
        let answer_headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("POST {url} answered {status} with no JSON ({e}): {bytes:?}")
        });
        (status, body, answer_headers)
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum Located {
    Dir(PathBuf),
    Skip(String),
}

/// The install to run, or why the tests skip. Panics where skipping would hide a CI fault
/// (and, panicking, is tried again by the next test, which fails the same way).
fn locate() -> Located {
    let pinned = pinned_version();
    if let Some(dir) = std::env::var_os("MESHGUARD_IDP_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if let Err(why) = node_version() {
            panic!("MESHGUARD_IDP_DIR is set but {why}");
        }
        match installed_version(&dir) {
            Some(version) if version == pinned => return Located::Dir(dir),
            Some(version) => panic!(
                "MESHGUARD_IDP_DIR={} holds oidc-provider {version}, not {pinned}",
                dir.display()
            ),
            None => panic!(
                "MESHGUARD_IDP_DIR={} holds no node_modules/oidc-provider",
                dir.display()
            ),
        }
    }
    let candidates = [
        target_dir().map(|t| t.join("oidc-provider")),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/idp")),
    ];
    let Some(dir) = candidates
        .into_iter()
        .flatten()
        .find(|dir| installed_version(dir).is_some())
    else {
        return Located::Skip(
            "oidc-provider is not installed (`bash .ci/run` installs it, or `npm ci` in tests/idp; \
             MESHGUARD_IDP_DIR names an install)"
                .to_owned(),
        );
    };
    match (node_version(), installed_version(&dir)) {
        (Err(why), _) => Located::Skip(why),
        (Ok(_), Some(version)) if version == pinned => Located::Dir(dir),
        (Ok(_), found) => Located::Skip(format!(
            "{} holds oidc-provider {}, not {pinned} (run `npm ci` there again)",
            dir.display(),
            found.unwrap_or_default()
        )),
    }
}

/// Says why the interop tests skip (once per test binary, as the install is located once).
/// Written to the process's standard error directly: libtest captures `eprintln!` of passing
/// tests and would hide it; and in one write, so libtest's own output does not split it.
fn skip_note(why: &str) {
    let line = format!("\ninterop_* tests skipped: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn pinned_version() -> String {
    let manifest: Value = serde_json::from_str(MANIFEST).unwrap();
    manifest["dependencies"]["oidc-provider"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn installed_version(dir: &Path) -> Option<String> {
    let text = std::fs::read(dir.join("node_modules/oidc-provider/package.json")).ok()?;
    let manifest: Value = serde_json::from_slice(&text).ok()?;
    manifest["version"].as_str().map(str::to_owned)
}

/// Node's version, or why it cannot be run.
fn node_version() -> Result<String, String> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Ok(out) => Err(format!("`node --version` failed ({})", out.status)),
        Err(e) => Err(format!("node cannot be run ({e})")),
    }
}

/// The directory cargo builds into: this test binary is `<target>/<profile>/deps/<name>`.
fn target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors().nth(3).map(Path::to_path_buf)
}

/// Sends each stdout line of the IdP on a channel, and keeps reading after the ready line
/// so that oidc-provider's later output never fills the pipe.
fn forward_lines(stdout: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            // The receiver is gone once the IdP is ready; the pipe still has to be drained.
            let _ = sender.send(line);
        }
    });
    receiver
}

/// Collects the IdP's standard error (its warnings, and the reason it failed), bounded.
fn drain_stderr(
    mut stderr: impl std::io::Read + Send + 'static,
) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    let reader = std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buffer) {
            if n == 0 {
                return;
            }
            let mut text = sink.lock().unwrap_or_else(PoisonError::into_inner);
            if text.len() < MAX_STDERR {
                text.push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        }
    });
    (text, reader)
}

/// A client for loopback http endpoints (the IdP's, a test's own service): rustls on ring
/// with no roots, since nothing here is https, and no proxy from the environment.
pub fn http_client() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `application/x-www-form-urlencoded` encoding: every byte but the unreserved ones escaped.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
