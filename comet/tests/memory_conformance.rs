//! The provider suite against the in-process provider: what a provider of
//! your own writes to prove itself (feature `testing`).

use comet::{MemoryProvider, Provider, Retention};
use std::sync::Arc;

async fn memory(retention: Retention) -> Arc<dyn Provider> {
    Arc::new(MemoryProvider::new(retention))
}

comet::provider_suite!(memory);
