//! Webhook backends that ckslab provides to scenarios (the exam provides them too): an
//! ImagePolicyWebhook backend with an allow-list of registries, served over TLS.

pub mod image_policy;
pub mod process;
pub mod tls;
