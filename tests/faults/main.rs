//! Guarantees under real operation: database outages and cuts, `kill -9` of server processes
//! mid-load, and the input faults (overflow, NUL bytes, huge ids, duplicate PINs, unpriced lines)
//! that once got through. Every test here names the guarantee it proves in the README.

#[path = "../common/mod.rs"]
mod common;

mod findings;
mod history;
mod kill;
mod outage;
