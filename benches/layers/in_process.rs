//! A request through the guarded router called in-process (`oneshot`), beside the bare
//! handler, the token check alone, raw ring and raw Cedar.

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use http::StatusCode;
use meshguard::caller::Caller;

use crate::service::{
    CedarFloor, bare_router, call, cases, engine, guarded_router, token_only_router,
};
use crate::{PAIRED_BATCH, PAIRED_ROUNDS, paired};

pub(crate) fn in_process(c: &mut Criterion) {
    let _ = meshguard::token::crypto::install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bare = bare_router();
    let mut summary = Vec::new();
    for case in cases() {
        let bearer = format!("Bearer {}", case.token);
        let guarded = guarded_router(case.verifier.clone());
        let token_only = token_only_router(case.verifier.clone());
        assert_eq!(call(&runtime, &bare, &bearer), StatusCode::OK);
        assert_eq!(call(&runtime, &token_only, &bearer), StatusCode::OK);
        assert_eq!(call(&runtime, &guarded, &bearer), StatusCode::OK);
        let denied = format!("Bearer {}x", case.token);
        assert_eq!(call(&runtime, &guarded, &denied), StatusCode::UNAUTHORIZED);

        let (input, signature_b64) = case.token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
        assert!((case.floor)(input.as_bytes(), &signature));
        let caller = Caller::from_token(case.verifier.verify(&case.token).unwrap());
        let cedar = CedarFloor::new(&engine(), &caller);

        let mut group = c.benchmark_group(format!("in_process/{}", case.name));
        group.bench_function("bare handler", |b| {
            b.iter(|| call(&runtime, &bare, black_box(&bearer)))
        });
        group.bench_function("guarded handler", |b| {
            b.iter(|| call(&runtime, &guarded, black_box(&bearer)))
        });
        group.bench_function("token check alone", |b| {
            b.iter(|| call(&runtime, &token_only, black_box(&bearer)))
        });
        group.bench_function("raw ring verify", |b| {
            b.iter(|| (case.floor)(black_box(input.as_bytes()), black_box(&signature)))
        });
        group.bench_function("raw cedar is_authorized", |b| {
            b.iter(|| black_box(&cedar).decide())
        });
        group.finish();
        if !paired() {
            continue;
        }

        // Alternating batches of the four, so that load drifting on the shared machine hits
        // all of them alike.
        let mut times = [Duration::ZERO; 5];
        for _ in 0..PAIRED_ROUNDS {
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                call(&runtime, &bare, black_box(&bearer));
            }
            times[0] += start.elapsed();
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                call(&runtime, &guarded, black_box(&bearer));
            }
            times[1] += start.elapsed();
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                (case.floor)(black_box(input.as_bytes()), black_box(&signature));
            }
            times[2] += start.elapsed();
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                black_box(&cedar).decide();
            }
            times[3] += start.elapsed();
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                call(&runtime, &token_only, black_box(&bearer));
            }
            times[4] += start.elapsed();
        }
        let per = |t: Duration| t.as_secs_f64() * 1e6 / (PAIRED_ROUNDS * PAIRED_BATCH) as f64;
        let [bare_us, guarded_us, ring_us, cedar_us, token_us] = times.map(per);
        summary.push(format!(
            "in_process/{} paired: bare {bare_us:.2} µs, guarded {guarded_us:.2} µs \
             (ratio {:.2}; target <= 1.15), ring {ring_us:.2} µs, cedar {cedar_us:.2} µs, \
             glue = guarded - bare - ring - cedar = {:.2} µs; token check alone {token_us:.2} µs \
             (ratio {:.2})",
            case.name,
            guarded_us / bare_us,
            guarded_us - bare_us - ring_us - cedar_us,
            token_us / bare_us,
        ));
    }
    for line in summary {
        println!("{line}");
    }
}
