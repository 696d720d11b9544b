-- wrk script of tests/bench/run.sh's webhook scenario (7): POSTs Meta's status deliveries,
-- each with its own message id, signed as Meta signs them (X-Hub-Signature-256).
--
--   wrk -tTHREADS ... -s webhooks.lua http://HOST:PORT/webhooks/whatsapp -- \
--       TEMPLATE SIGS MODE TOTAL THREADS START
--
-- wrk's Lua cannot compute an HMAC, so `bench.py webhook-requests` precomputes the
-- signatures: TEMPLATE is the body with @ID@ (replaced by the request's index, 12 digits)
-- and @STATUS@ (sent, delivered, read by index modulo 3); SIGS holds one 64-hex-digit
-- signature a line, the index-th line signing the index-th body. Each thread takes every
-- THREADS-th index from its own (THREADS must be wrk's -t: wrk starts a thread before it
-- sets up the next, so no thread can learn their number from setup()), so no two requests of a run share a message id until
-- the file is used up and begins again (it holds more ids than the receiver's dedup keeps).
-- MODE "good" signs with SIGS; "bad" sends a wrong signature (a warm-up answered 403,
-- counted by no status). TOTAL > 0 makes the threads stop after indices 0..TOTAL-1 between
-- them (a connection's request in flight then may still go out); 0 runs for wrk's -d.
-- START shifts every index by that much: successive runs take ids the receiver has not
-- seen lately.

local threads = 0
local thread_list = {}

function setup(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
  table.insert(thread_list, thread)
end

-- The first index no thread has used: where the next run starts so that it repeats no id.
-- Threads do not send equally many requests, so it is not START + the requests sent.
function done(summary, latency, requests)
  local next_index = 0
  for _, thread in ipairs(thread_list) do
    local first = thread:get("start") + thread:get("thread_index")
    local reached = first + thread:get("sent") * threads
    if reached > next_index then
      next_index = reached
    end
  end
  io.write(string.format("next_index %d\n", next_index))
end

local head, middle, tail, sigs, count, bad, share, thread_count
-- Globals, for done() to read through thread:get.
start = 0
sent = 0
local statuses = { "sent", "delivered", "read" }
local prefix

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

function init(args)
  local template = slurp(args[1])
  local a, b = template:find("@ID@", 1, true)
  local c, d = template:find("@STATUS@", b + 1, true)
  assert(a and c, "the template needs @ID@ and then @STATUS@")
  head = template:sub(1, a - 1)
  middle = template:sub(b + 1, c - 1)
  tail = template:sub(d + 1)
  sigs = slurp(args[2])
  count = math.floor(#sigs / 65)
  assert(count > 0, "no signatures in " .. args[2])
  bad = args[3] == "bad"
  local total = tonumber(args[4])
  thread_count = tonumber(args[5])
  start = tonumber(args[6] or "0")
  assert(total and thread_count and thread_index < thread_count, "TOTAL and THREADS (wrk's -t) needed")
  if total > 0 then
    -- The indices k, k + n, k + 2n... below total.
    share = math.floor((total - thread_index + thread_count - 1) / thread_count)
  end
  prefix = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port
    .. "\r\nUser-Agent: facebookexternalua\r\nContent-Type: application/json\r\nX-Hub-Signature-256: sha256="
end

function request()
  local index = (start + thread_index + sent * thread_count) % count
  sent = sent + 1
  if share and sent == share then
    wrk.thread:stop()
  end
  local body = head .. string.format("%012d", index) .. middle .. statuses[index % 3 + 1] .. tail
  local sig
  if bad then
    sig = "0000000000000000000000000000000000000000000000000000000000000000"
  else
    local at = index * 65 + 1
    sig = sigs:sub(at, at + 63)
  end
  return prefix .. sig .. "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end
