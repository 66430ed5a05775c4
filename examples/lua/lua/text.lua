-- Small text helpers, shared by the Lua entries that import them.
local text = {}

function text.words(s)
  local n = 0
  for _ in string.gmatch(s, "%S+") do
    n = n + 1
  end
  return n
end

function text.shout(s)
  return string.upper(s) .. "!"
end

return text
