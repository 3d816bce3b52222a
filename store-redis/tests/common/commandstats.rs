//! What the server counted of each command.

/// The calls of `command` the server has counted, from `INFO commandstats`
/// (commands run inside scripts included).
pub fn calls(con: &mut redis::Connection, command: &str) -> u64 {
    let stats: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    let head = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|line| line.strip_prefix(&head))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}
