//! Instances: placement, lifecycle actions on their host, export to an image. The operations
//! (the only code that changes an instance's state) are in `lifecycle`; placement (choose a
//! host, claim it, retry) in `placement`, used by create, start, migrate and drain alike.

pub mod api;
pub mod error;
pub mod jobs;
pub mod lifecycle;
pub mod placement;
pub mod store;

pub use error::{InstanceError, JobError};
pub use jobs::{create_request, endpoint, record};
pub use lifecycle::{act, create, delete, export, find};
pub use placement::{PlacementError, place};
