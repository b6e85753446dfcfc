//! Unit tests of the encoder: workspace shapes and flop counts.

use super::*;

#[test]
fn shapes_and_flops() {
    let cfg = EncoderConfig::new(5, 4, 1);
    let net = Encoder::<f64>::new(&cfg).unwrap();
    assert_eq!(net.inputs().dim(), (10, 8));
    assert_eq!(net.weight(0).dim(), (4, 8));
    assert_eq!(net.weight(1).dim(), (4, 4));
    // 28 N d^2 + 6 N^2 d for two layers.
    assert_eq!(net.flops_per_step(), (28 * 5 * 16 + 6 * 25 * 4) as f64);
}
