//! The network surface: Arrow Flight SQL, the typed gRPC API, the REST API and the dashboard,
//! with authentication in front of every call.
//!
//! Built by the Flight and REST issues.
