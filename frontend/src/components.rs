//! One component per file.

pub mod calls_panel;
pub mod code_block;
pub mod draft_page;
pub mod drift_page;
pub mod graph_canvas;
pub mod graph_page;
pub mod header;
pub mod history_page;
pub mod legend;
pub mod loading;
pub mod observed_section;
pub mod overview;
pub mod search;
pub mod side_panel;
pub mod source_banner;
pub mod workload_input;
