use ccem::loss::Loss;
use ccem::optim::{optimize, FreeConfig};
fn main() {
    for n in [4usize, 10, 20, 30, 50] {
        for loss in [Loss::sigmoid(1.0, 1.0).unwrap(), Loss::infonce(0.5).unwrap()] {
            let mut cfg = FreeConfig::new(n, n, loss, 1);
            cfg.steps = 2000;
            cfg.grad_tol = 0.0;
            let t0 = std::time::Instant::now();
            let _ = optimize(&cfg).unwrap();
            println!("N={n} {} {:.2} us/step", loss.name(), t0.elapsed().as_secs_f64() / 2000.0 * 1e6);
        }
    }
}
