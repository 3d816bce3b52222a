-- For scripts that write out many sessions at once (add_reads.lua,
-- refresh_reads.lua). Redis keeps what a script wrote before an error, so a
-- batch that failed on one session could not be sent again without adding
-- the others' counts twice. guarded(step, ...) runs step(...) and answers
-- true and its results, or false when that one session's key refused it (a
-- key of another type, a record that does not parse, a counter that is not
-- a number): that session alone is left out. Errors of the server as a
-- whole (out of memory, read-only, ...) still end the script.
local GLOBAL_ERRORS = {'OOM', 'READONLY', 'MISCONF', 'NOREPLICAS', 'BUSY', 'LOADING', 'MASTERDOWN'}
local function settled(ok, ...)
  if ok then return true, ... end
  local result = ...
  local message = type(result) == 'table' and (result.err or '') or tostring(result)
  for _, code in ipairs(GLOBAL_ERRORS) do
    if string.sub(message, 1, #code) == code then error(result) end
  end
  return false
end
local function guarded(step, ...)
  return settled(pcall(step, ...))
end
