//! Admin helpers for the tests that look at a broker's topics.

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;

#[allow(dead_code)] // not every test binary that includes `common` asks the admin
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// A topic config's value as the broker describes it ("" when it has none).
#[allow(dead_code)] // not every test binary that includes `common` asks the admin
pub fn topic_config(admin: &AdminClient<DefaultClientContext>, topic: &str, key: &str) -> String {
    let spec = [ResourceSpecifier::Topic(topic)];
    let described = runtime()
        .block_on(admin.describe_configs(&spec, &AdminOptions::new()))
        .expect("describe request");
    let resource = described
        .into_iter()
        .next()
        .expect("one resource")
        .expect("described");
    let entry = resource.get(key).and_then(|e| e.value.clone());
    entry.unwrap_or_default()
}
