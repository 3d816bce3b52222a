//! store-memory against the shared conformance suite of session-core.

use session_core::Limits;
use store_memory::MemoryStore;

session_core::store_conformance_tests!(|limits: Limits| async move {
    MemoryStore::builder().limits(limits).build()
});
