//! The operator console (ratatui), speaking only the control protocol.
//!
//! Empty for now; the console work fills it. ratatui 0.30 and crossterm 0.29 are declared
//! already so the workspace's pinned versions resolve and build together.
