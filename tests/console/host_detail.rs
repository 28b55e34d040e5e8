//! The host detail screen's workflows in a real browser (see main.rs).
