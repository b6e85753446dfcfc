//! `ccem explore` API tests.
