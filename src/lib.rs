//! ckslab: a hands-on lab and grader for the Certified Kubernetes Security Specialist exam.
//!
//! The flow: a [`scenario`] is loaded and rendered from its params, its steps ([`step`]) change a
//! cluster through a [`backend`], and its checks ([`check`]) are graded by the [`grade`] engine
//! into a report. [`verify`] proves a scenario end to end. The CLI ([`cli`]) and the web UI
//! ([`web`]) are thin layers over these.

pub mod backend;
pub mod backup;
pub mod bundle;
pub mod check;
pub mod classroom;
pub mod cli;
pub mod curriculum;
pub mod doctor;
pub mod exam;
pub mod fetch;
pub mod grade;
pub mod history;
pub mod lab;
pub mod scenario;
pub mod staticpod;
pub mod step;
pub mod store;
pub mod tools;
pub mod ui;
pub mod verify;
pub mod web;
pub mod webhook;
