//! (in progress: replaced by the services branch)
use crate::model::Proto;
pub fn service_name(_port: u16, _proto: Proto) -> Option<&'static str> { None }
