//! SVIDs living seconds, rotated every ~0.7 s (and once the CA), under continuous mTLS
//! traffic from a raw rustls client, reqwest and tonic: no request fails.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meshguard::peer::{Authorizer, SvidHealth, SvidStore, svid_client_config, svid_server_config};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::support::{
    BoxError, CLIENT_ID, Ca, SERVER_ID, connect, delivery, get_root, raw_get, serve_axum,
    serve_tonic, short_svid, store_with, tonic_channel, tonic_check,
};

/// Seconds each SVID lives: a few rotation periods.
const LIFETIME: i64 = 3;
/// Rotations in a run; the CA rotates at `CA_ROTATION` (new bundle first, new SVIDs next).
const ROTATIONS: usize = 6;
const CA_ROTATION: usize = 2;
const PERIOD: Duration = Duration::from_millis(700);
/// A pause between requests, so that the clients leave the shared machine some room.
const PACE: Duration = Duration::from_millis(15);

/// What one client saw.
#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    failures: Vec<String>,
    /// Thumbprints of the certificates the server presented (raw client) or of the client
    /// certificates the server saw (reqwest).
    certificates: BTreeSet<String>,
    /// Server certificates seen outside their validity period.
    expired: usize,
}

/// What one request showed besides its success.
#[derive(Default)]
struct Seen {
    certificate: Option<String>,
    expired: bool,
}

impl Tally {
    fn record(&mut self, outcome: Result<Seen, BoxError>) {
        match outcome {
            Ok(seen) => {
                self.ok += 1;
                self.certificates.extend(seen.certificate);
                self.expired += usize::from(seen.expired);
            }
            Err(e) => self.failures.push(e.to_string()),
        }
    }
}

fn spawn_loop<F, Fut>(stop: &watch::Receiver<bool>, mut step: F) -> JoinHandle<Tally>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Seen, BoxError>> + Send,
{
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut tally = Tally::default();
        while !*stop.borrow() {
            tally.record(step().await);
            tokio::time::sleep(PACE).await;
        }
        tally
    })
}

fn rotate(stores: &[(&SvidStore, &str)], ca: &Ca, bundle: &[&Ca]) {
    for (store, id) in stores {
        let svid = short_svid(ca, id, LIFETIME);
        store
            .update(delivery(&svid, &[("example.org", bundle)]))
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_under_traffic_from_rustls_reqwest_and_tonic_lose_no_request() {
    let old_ca = Ca::new("example.org");
    let new_ca = Ca::new("example.org");
    let server = store_with(&old_ca, SERVER_ID, LIFETIME, &[("example.org", &[&old_ca])]);
    let client = store_with(&old_ca, CLIENT_ID, LIFETIME, &[("example.org", &[&old_ca])]);
    let members = Authorizer::member_of("example.org".parse().unwrap());
    let config = Arc::new(svid_server_config(&server, members.clone()).unwrap());
    let (https, _) = serve_axum(Arc::clone(&config)).await;
    let grpc = serve_tonic(config).await;
    let orders = Authorizer::id(SERVER_ID.parse().unwrap());
    let (stop_tx, stop) = watch::channel(false);

    let tls = Arc::new(svid_client_config(&client, orders.clone()).unwrap());
    let raw = spawn_loop(&stop, move || raw_step(https, Arc::clone(&tls)));

    let reqwest = reqwest::Client::builder()
        .tls_backend_preconfigured(svid_client_config(&client, orders.clone()).unwrap())
        // A new connection, so a new handshake, for every request.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/", https.port());
    let reqwest = spawn_loop(&stop, move || {
        let request = reqwest.get(&url).send();
        async move {
            let body = request.await?.error_for_status()?.text().await?;
            let (id, thumbprint) = body.split_once(' ').ok_or("no thumbprint")?;
            assert_eq!(id, CLIENT_ID);
            Ok(Seen {
                certificate: Some(thumbprint.to_owned()),
                expired: false,
            })
        }
    });

    let (store, authz) = (client.clone(), orders.clone());
    let tonic_fresh = spawn_loop(&stop, move || {
        let (store, authz) = (store.clone(), authz.clone());
        async move {
            tonic_check(tonic_channel(grpc, &store, authz).await?).await?;
            Ok(Seen::default())
        }
    });
    // One channel for the whole run: its connection was set up before the rotations.
    let long_lived = tonic_channel(grpc, &client, orders.clone()).await.unwrap();
    let tonic_long = spawn_loop(&stop, move || {
        let check = tonic_check(long_lived.clone());
        async move { check.await.map(|()| Seen::default()) }
    });
    // One HTTP/1.1 connection for the whole run, too.
    let (kept, first, _) = connect(
        https,
        Arc::new(svid_client_config(&client, orders).unwrap()),
    )
    .await
    .unwrap();
    let kept = Arc::new(Mutex::new(kept));
    let kept_loop = spawn_loop(&stop, move || {
        let kept = Arc::clone(&kept);
        async move {
            get_root(&mut *kept.lock().await).await?;
            Ok(Seen::default())
        }
    });

    for rotation in 1..=ROTATIONS {
        tokio::time::sleep(PERIOD).await;
        let stores = [(&server, SERVER_ID), (&client, CLIENT_ID)];
        if rotation < CA_ROTATION {
            rotate(&stores, &old_ca, &[&old_ca]);
        } else if rotation == CA_ROTATION {
            rotate(&stores, &old_ca, &[&old_ca, &new_ca]);
        } else {
            rotate(&stores, &new_ca, &[&old_ca, &new_ca]);
        }
    }
    tokio::time::sleep(PERIOD).await;
    stop_tx.send(true).unwrap();

    let raw = raw.await.unwrap();
    let reqwest = reqwest.await.unwrap();
    let tonic_fresh = tonic_fresh.await.unwrap();
    let tonic_long = tonic_long.await.unwrap();
    let kept = kept_loop.await.unwrap();
    for (name, tally) in [
        ("raw", &raw),
        ("reqwest", &reqwest),
        ("tonic new channels", &tonic_fresh),
        ("tonic one channel", &tonic_long),
        ("one connection", &kept),
    ] {
        eprintln!("{name}: {} requests", tally.ok);
        assert!(tally.failures.is_empty(), "{name}: {:?}", tally.failures);
        assert!(tally.ok > 0, "{name}");
    }
    // New handshakes got a new certificate after each rotation, never an expired one, while
    // the connection set up with the first one kept working; the server saw reqwest present
    // rotated client certificates.
    assert!(raw.certificates.len() >= 4, "{:?}", raw.certificates);
    assert!(raw.certificates.contains(first.x5t_s256()));
    assert_eq!(raw.expired, 0);
    assert!(
        reqwest.certificates.len() >= 4,
        "{:?}",
        reqwest.certificates
    );
    let status = server.status();
    assert_eq!(status.health(), SvidHealth::Current);
    assert_eq!(status.generation(), 1 + ROTATIONS as u64);
}

/// One request on a new connection: the thumbprint of the server's certificate and
/// whether it was outside its validity period when the handshake finished.
async fn raw_step(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Result<Seen, BoxError> {
    let (body, server) = raw_get(addr, tls).await?;
    assert!(body.starts_with(CLIENT_ID), "{body}");
    let now = SystemTime::now();
    let valid = server.not_before().unwrap() <= now && now < server.not_after().unwrap();
    assert_eq!(server.spiffe_id().map(|id| id.as_str()), Some(SERVER_ID));
    Ok(Seen {
        certificate: Some(server.x5t_s256().to_owned()),
        expired: !valid,
    })
}
