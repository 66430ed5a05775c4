-- `main(name)`: asks a WASM function for a greeting, then has it shouted
-- by a Lua function that a WASM function calls (Lua → WASM → Lua).
local funcs = require("funcs")
local logger = require("logger")
local text = require("text")

local function main(name)
  local greeting, err = funcs.call("demo:hello", name)
  if err then
    return nil, err
  end
  -- demo:relay returns result<string, string>: {ok = ...} or {err = ...}.
  local relayed, err2 = funcs.call("demo:relay", "demo:shout", greeting)
  if err2 then
    return nil, err2
  end
  if relayed.err then
    return nil, relayed.err
  end
  logger:info("greeted", { name = name })
  return { greeting = greeting, shouted = relayed.ok, words = text.words(greeting) }
end

return { main = main }
