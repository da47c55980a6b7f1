//! The guarded router served over loopback (`axum::serve` on 127.0.0.1) to keep-alive
//! hyper connections, beside the bare handler and the token check alone.

use std::time::{Duration, Instant};

use criterion::Criterion;

use crate::loopback_client::Loopback;
use crate::service::{bare_router, cases, guarded_router, token_only_router};
use crate::{CONNECTIONS, LOOPBACK_BATCH, PAIRED_LOOPBACK_ROUNDS, PATH, paired};

pub(crate) fn loopback(c: &mut Criterion) {
    let _ = meshguard::token::crypto::install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut bare = runtime.block_on(Loopback::start(bare_router(), CONNECTIONS));
    let mut summary = Vec::new();
    for case in cases() {
        let bearer = format!("Bearer {}", case.token);
        let mut guarded = runtime.block_on(Loopback::start(
            guarded_router(case.verifier.clone()),
            CONNECTIONS,
        ));
        let mut token_only = runtime.block_on(Loopback::start(
            token_only_router(case.verifier.clone()),
            CONNECTIONS,
        ));
        runtime.block_on(guarded.send(PATH, &bearer, CONNECTIONS as u64));
        runtime.block_on(token_only.send(PATH, &bearer, CONNECTIONS as u64));

        let mut group = c.benchmark_group(format!("loopback/{}", case.name));
        group.sample_size(10);
        group.throughput(criterion::Throughput::Elements(LOOPBACK_BATCH as u64));
        group.bench_function("bare handler", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    runtime.block_on(bare.send(PATH, &bearer, LOOPBACK_BATCH as u64));
                }
                start.elapsed()
            })
        });
        group.bench_function("guarded handler", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    runtime.block_on(guarded.send(PATH, &bearer, LOOPBACK_BATCH as u64));
                }
                start.elapsed()
            })
        });
        group.finish();
        if !paired() {
            continue;
        }

        let (mut bare_time, mut guarded_time, mut token_time) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for _ in 0..PAIRED_LOOPBACK_ROUNDS {
            let start = Instant::now();
            runtime.block_on(bare.send(PATH, &bearer, LOOPBACK_BATCH as u64));
            bare_time += start.elapsed();
            let start = Instant::now();
            runtime.block_on(guarded.send(PATH, &bearer, LOOPBACK_BATCH as u64));
            guarded_time += start.elapsed();
            let start = Instant::now();
            runtime.block_on(token_only.send(PATH, &bearer, LOOPBACK_BATCH as u64));
            token_time += start.elapsed();
        }
        let per =
            |t: Duration| t.as_secs_f64() * 1e6 / (PAIRED_LOOPBACK_ROUNDS * LOOPBACK_BATCH) as f64;
        summary.push(format!(
            "loopback/{} paired ({CONNECTIONS} connections): bare {:.2} µs/request, guarded \
             {:.2} µs/request, ratio {:.2} (target <= 1.15); token check alone {:.2} \
             µs/request, ratio {:.2}",
            case.name,
            per(bare_time),
            per(guarded_time),
            guarded_time.as_secs_f64() / bare_time.as_secs_f64(),
            per(token_time),
            token_time.as_secs_f64() / bare_time.as_secs_f64(),
        ));
    }
    for line in summary {
        println!("{line}");
    }
}
