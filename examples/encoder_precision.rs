//! The encoder's float32 run against a float64 run of the same training (issue 18): `s_pos` of
//! the f32 network on the size-chosen kernels (what `ccem train` runs), of the f32 network on the
//! tiled kernel alone (the kernel before the size-based choice), and of the f64 network.
//!
//! `cargo run --release --example encoder_precision -- [N] [STEPS]` (defaults 1024, 20; d = N,
//! sigmoid loss t = b = 3, lr 0.5, seed 0, as `ccem train --n N --loss sigmoid --t 3`).

use ccem::encoder::{Encoder, EncoderConfig, GemmKernel, Real};
use ccem::loss::Loss;
use std::time::Instant;

fn s_pos<T: Real>(cfg: &EncoderConfig, loss: &Loss, kernel: GemmKernel) -> (f64, f64) {
    let start = Instant::now();
    let mut net = Encoder::<T>::new(cfg).expect("a valid configuration");
    net.set_kernel(kernel);
    for _ in 0..cfg.steps {
        assert!(net.grad(loss) && net.sgd_step(cfg.lr), "diverged");
    }
    net.loss(loss);
    let s = net.similarities();
    (
        s.diag().mean().unwrap_or(f64::NAN),
        start.elapsed().as_secs_f64(),
    )
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("N and STEPS are integers"))
        .collect();
    let n = args.first().copied().unwrap_or(1024);
    let cfg = EncoderConfig {
        steps: args.get(1).copied().unwrap_or(20),
        ..EncoderConfig::new(n, n, 0)
    };
    let loss = Loss::sigmoid(3.0, 3.0).expect("a valid loss");
    let (auto, ta) = s_pos::<f32>(&cfg, &loss, GemmKernel::Auto);
    let (tiled, tt) = s_pos::<f32>(&cfg, &loss, GemmKernel::Tiled);
    let (reference, tr) = s_pos::<f64>(&cfg, &loss, GemmKernel::Auto);
    println!("N = d = {n}, {} steps", cfg.steps);
    println!("f64 (reference)       s_pos {reference:.12}   {tr:.2} s");
    println!(
        "f32, kernel by size   s_pos {auto:.12}   |diff| {:.2e}   {ta:.2} s",
        (auto - reference).abs()
    );
    println!(
        "f32, tiled kernel     s_pos {tiled:.12}   |diff| {:.2e}   {tt:.2} s",
        (tiled - reference).abs()
    );
}
