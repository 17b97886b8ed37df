//! Private networks on this node: the keeper that opens, makes and shares content keys
//! (`keeper.rs`), and sealing and opening content for the API (`seal.rs`).

pub mod keeper;
pub mod seal;
