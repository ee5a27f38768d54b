//! Table tests of notification parsing, authentication and matching.
use super::*;
