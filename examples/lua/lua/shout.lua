-- `shout(s)`: called from WASM through funcs with a string.
local text = require("text")

function shout(s)
  if s == "" then
    return nil, "nothing to shout"
  end
  return text.shout(s)
end
