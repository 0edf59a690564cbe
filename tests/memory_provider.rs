//! The provider suite against the in-process provider.

mod common;

use comet_chat::comet::{MemoryProvider, Provider, Retention};
use std::sync::Arc;

async fn memory(retention: Retention) -> Arc<dyn Provider> {
    Arc::new(MemoryProvider::new(retention))
}

provider_suite!(memory);
