//! Colour maps: viridis (sequential, perceptually uniform) and a blue-white-red diverging map.

/// A colour map: piecewise-linear interpolation between evenly spaced anchor colours.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ColorMap {
    anchors: &'static [(u8, u8, u8)],
}

/// viridis (matplotlib's default), sampled at 10 evenly spaced points (the values of
/// `viridisLite::viridis(10)`).
pub(crate) const VIRIDIS: ColorMap = ColorMap {
    anchors: &[
        (0x44, 0x01, 0x54),
        (0x48, 0x28, 0x78),
        (0x3e, 0x4a, 0x89),
        (0x31, 0x68, 0x8e),
        (0x26, 0x82, 0x8e),
        (0x1f, 0x9e, 0x89),
        (0x35, 0xb7, 0x79),
        (0x6d, 0xcd, 0x59),
        (0xb4, 0xde, 0x2c),
        (0xfd, 0xe7, 0x25),
    ],
};

/// Diverging blue (low) - white (middle) - red (high): ColorBrewer's 11-class RdBu, reversed.
pub(crate) const BLUE_WHITE_RED: ColorMap = ColorMap {
    anchors: &[
        (0x05, 0x30, 0x61),
        (0x21, 0x66, 0xac),
        (0x43, 0x93, 0xc3),
        (0x92, 0xc5, 0xde),
        (0xd1, 0xe5, 0xf0),
        (0xf7, 0xf7, 0xf7),
        (0xfd, 0xdb, 0xc7),
        (0xf4, 0xa5, 0x82),
        (0xd6, 0x60, 0x4d),
        (0xb2, 0x18, 0x2b),
        (0x67, 0x00, 0x1f),
    ],
};

/// Colour of cells without data.
pub(crate) const MISSING: (u8, u8, u8) = (0xd9, 0xd9, 0xd9);

impl ColorMap {
    /// The colour at `h` in [0, 1] (clamped; `NaN` gives [`MISSING`]).
    pub(crate) fn at(&self, h: f64) -> (u8, u8, u8) {
        if h.is_nan() {
            return MISSING;
        }
        let n = self.anchors.len() - 1;
        let x = h.clamp(0.0, 1.0) * n as f64;
        let i = (x.floor() as usize).min(n - 1);
        let f = x - i as f64;
        let (a, b) = (self.anchors[i], self.anchors[i + 1]);
        let mix = |p: u8, q: u8| (f64::from(p) + (f64::from(q) - f64::from(p)) * f).round() as u8;
        (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// The colour of `v` on the scale `[lo, hi]` (clamped outside).
    pub(crate) fn map(&self, v: f64, lo: f64, hi: f64) -> (u8, u8, u8) {
        self.at((v - lo) / (hi - lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_clamping() {
        assert_eq!(VIRIDIS.at(0.0), (0x44, 0x01, 0x54));
        assert_eq!(VIRIDIS.at(1.0), (0xfd, 0xe7, 0x25));
        assert_eq!(VIRIDIS.at(7.0), VIRIDIS.at(1.0));
        assert_eq!(VIRIDIS.map(-3.0, 0.0, 1.0), VIRIDIS.at(0.0));
        assert_eq!(BLUE_WHITE_RED.map(0.0, -1.0, 1.0), (0xf7, 0xf7, 0xf7));
        assert_eq!(VIRIDIS.at(f64::NAN), MISSING);
    }
}
