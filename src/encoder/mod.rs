//! The paper's encoder (filled in by the encoder work).
