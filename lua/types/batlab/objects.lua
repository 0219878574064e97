---@meta _
-- LuaCATS definitions of the objects batlab's core functions return
-- (packets, encoders, recorders, gzip files, trails, series, the seed
-- interface's settings and logger), for lua-language-server: never loaded
-- by batlab, declarations only. `_`: nothing requires this file; the
-- classes are found through the workspace library (lua/types/batlab.lua
-- says how to use them). docs/lua-api.md describes each.

---@class batlab.Register one entry of batlab.registers
---@field name string "VOLTAGE"
---@field namespace "cell"|"unit"|"bootloader"|"comms"
---@field addr integer
---@field unit string "V", "A", "degC", "Hz", "s", "App", "ohm", "K" or ""
---@field kind string how the value is encoded ("voltage", "current", "temperature", ...)
---@field access { read: boolean, write: boolean, eeprom: boolean, measured: boolean, refused: boolean, guarded: boolean }
---@field power_on integer? the raw value after power-on
---@field doc string

---A register reply, as the seed's Packet (dev:read, dev:write, batlab.Packet{...}).
---Every decoder returns `nil, message, code` on an invalid packet.
---@class batlab.Packet
---@field data number the 16-bit value (the seed's field); NaN if the packet is invalid
---@field raw integer the 16-bit value as received, even when invalid
---@field type "RESPONSE"
---@field valid boolean false when there is no trustworthy value (timeout, 257, ...)
---@field code string? why it is invalid ("ETIMEDOUT", ...), nil when valid
---@field namespace integer
---@field addr integer
---@field write boolean
---@field name string? the register's name, nil past the table
---@field timestamp number? when it arrived (batlab.now() scale)
---@field R number this cell's thermistor R (ohm, default 1500)
---@field B number this cell's thermistor B (K, default 3380)
local Packet = {}
---@return integer? value the 16-bit value
---@return string? err
---@return string? code
function Packet:value() end
---@return number? volts int16 x 4.5 / 32768
---@return string? err
---@return string? code
function Packet:asvoltage() end
---@return number? amps int16 x 4.096 / 32768 (signed)
---@return string? err
---@return string? code
function Packet:ascurrent() end
---@return number? amps raw / 128
---@return string? err
---@return string? code
function Packet:assetpoint() end
---@return number? amps raw / 128 (sine offset)
---@return string? err
---@return string? code
function Packet:asioff() end
---@return number? volts 134217.728 / raw (raw 0 gives 0)
---@return string? err
---@return string? code
function Packet:asvcc() end
---@return number? hz raw x 39.0625
---@return string? err
---@return string? code
function Packet:asfreq() end
---@return number? amps peak-to-peak: 2 / 2^raw
---@return string? err
---@return string? code
function Packet:asmagdiv() end
---@param R? number|number[] ohm, or the seed's Rlist (Lua index = cell + 1); default the packet's
---@param B? number|number[] K, or the seed's Blist
---@return number? degF
---@return string? err
---@return string? code
function Packet:astemperature(R, B) end
---@param R? number|number[]
---@param B? number|number[]
---@return number? degC
---@return string? err
---@return string? code
function Packet:astemperature_c(R, B) end
---@return string? name the constant's name ("MODE_CHARGE"), "MODE_UNKNOWN: 9"
---@return string? err
---@return string? code
function Packet:asmode() end
---@return string? name the lowest ERROR flag's name ("ERR_VOLTAGE_LIMIT_CHG"), "ERR_NONE" for 0
---@return string? err
---@return string? code
function Packet:aserr() end
---@return string[]? names every ERROR flag set, low bit first
---@return string? err
---@return string? code
function Packet:aserr_list() end
---@return string[]? names every STATUS flag set (STAT_*)
---@return string? err
---@return string? code
function Packet:asstatus() end
---@return string[]? names every SETTINGS flag set (SET_*)
---@return string? err
---@return string? code
function Packet:assettings() end
---Prints the packet as one line (as the seed did) and returns it; also tostring(p).
---@return string line "CELL2 VOLTAGE = 30583 (4.1999 V)"
function Packet:display() end

---@class batlab.PacketSpec
---@field namespace string|integer required: a name (any case) or a number
---@field addr string|integer required: a register name or address
---@field value integer? 0..65535, or -32768..-1 for signed registers
---@field write boolean?
---@field timestamp number? batlab.now() scale
---@field valid boolean? default: true when there is a value
---@field R number? thermistor calibration (ohm)
---@field B number? thermistor calibration (K)

---Engineering units to raw values exactly as the seed's Encoder (truncated,
---not clamped); batlab's own encoding is batlab.to_raw.
---@class batlab.Encoder
---@field value number the number it was made with
---@field data number the same
local Encoder = {}
---@return integer raw int(V x 32768 / 4.5)
function Encoder:asvoltage() end
---@return integer raw int(A x 32767 / 4.096)
function Encoder:ascurrent() end
---@return integer raw int(A x 128)
function Encoder:assetpoint() end
---@return integer raw int(A x 128)
function Encoder:asioff() end
---@return integer raw int(32768 x 4.096 / V); 0 raises
function Encoder:asvcc() end
---@return integer raw int(Hz / 39.0625)
function Encoder:asfreq() end
---@return integer raw int(1 - log2(App)); 0 or less raises
function Encoder:asmagdiv() end
---@param R? number ohm (default 1500)
---@param B? number K (default 3380)
---@return integer raw from degF
function Encoder:astemperature(R, B) end
---@param R? number ohm (default 1500)
---@param B? number K (default 3380)
---@return integer raw from degC
function Encoder:c_astemperature(R, B) end
---@param mult? number 6 (default), or 1 for the hi-res channel
---@return integer raw the low 16 bits of the charge in counts (input: coulombs)
function Encoder:aschargel(mult) end
---@param mult? number 6 (default), or 1 for the hi-res channel
---@return integer raw the high bits of the charge in counts (input: coulombs)
function Encoder:aschargeh(mult) end

---@class batlab.RecordPolicy which samples become rows (each optional; default every sample)
---@field every number? seconds
---@field dv number? V moved
---@field di number? A moved

---@class batlab.RecorderOpts
---@field t0 number? Test Time 0 (batlab.now() seconds; default now)
---@field epoch number? the wall-clock date of t0 (os.time())
---@field on_sample (fun(sample: batlab.Sample): number?)? after the row; returns the time before which it is not wanted again (nil: the next sample); must not wait
---@field on_error fun(message: string, code: string?)? a write failed, the device went away
---@field flush_every_row boolean? default: in real-time runs
---@field record batlab.RecordPolicy?
---@field lexcelon table? a batlab.lexcelon_log's level-1 rows: { file, path, prefix, period, epoch, start_time, utc, flush_every_row }

---A channel's time series written in C from every sample (batlab.recorder).
---@class batlab.Recorder
local Recorder = {}
---@param t { step: integer?, step_name: string?, cycle: integer?, cycle_kind: string? } labels of the rows from now on
function Recorder:label(t) end
---@param ohms number goes on the next row
function Recorder:impedance(ohms) end
---on_sample at the next sample, whatever it last returned.
function Recorder:wake() end
---@param t { step_time: number?, charge_ah: number?, energy_wh: number? } a resumed step's rows go on from this
function Recorder:carry(t) end
---@param ah number |Ah| the resumed step's Lexcelon rows go on from
---@param wh number |Wh|
function Recorder:lexcelon_carry(ah, wh) end
---@param p batlab.RecordPolicy which samples are rows from now on
function Recorder:policy(p) end
---@return true|nil ok
---@return string? err
---@return string? code
function Recorder:flush() end
---@return { rows: integer, samples: integer, charge_min: number?, charge_max: number?, listening: boolean, lexcelon_rows: integer?, error: string? }
function Recorder:stats() end
---@return true|nil ok
---@return string? err a write that failed
---@return string? code
function Recorder:close() end

---A file read through zlib ("r": inflated, a plain file as it is) or
---written as gzip ("w", "a") (batlab.gzopen).
---@class batlab.GzFile
local GzFile = {}
---@param fmt? "l"|"a"|integer a line (default), everything, or up to n bytes
---@return string? data nil at the end
---@return string? err on damage
function GzFile:read(fmt) end
---@return fun(): string? lines each line without its newline (a read error raises)
function GzFile:lines() end
---@param ... string|number
---@return batlab.GzFile|nil self
---@return string? err
function GzFile:write(...) end
---A sync flush: everything written so far is readable from the file.
---@return true|nil ok
---@return string? err
function GzFile:flush() end
---@return true|nil ok
---@return string? err
function GzFile:close() end

---A step's recent (time, voltage) pairs, kept in C (batlab.trail); `#tr` counts them.
---@class batlab.Trail
local Trail = {}
---@param t number seconds
---@param v number volts
---@return number? slope a window trail's |v - v_first| / (t - t_first) once the pairs span the window, else nil
function Trail:push(t, v) end
---@return number[] volts the voltages, oldest first
function Trail:values() end

---Every report's numbers for the chosen fields, kept in C (batlab.series); `#sr` counts the rows.
---@class batlab.Series
local Series = {}
---@param sample batlab.Sample
function Series:push(sample) end
---@return (number?)[][] rows one row per report, the fields in the order given (a missing temp_c is nil)
function Series:rows() end

---The seed's settings object (batlab.Settings()): every setting reads as a
---field by its JSON key name (st.restPeriod, aliases too).
---@class batlab.Settings
---@field settings table<string, any> the plain table
---@field warnings string[]?
---@field logfile string "batlab-log_<playlist>.csv"
---@field [string] any
local Settings = {}
---@param key string
---@return any
function Settings:get(key) end
---On success this object becomes the loaded settings later start_test calls use.
---@param file string|file* a path or an open file
---@param overrides? table<string, any>
---@return true|nil ok
---@return string[]|string warnings_or_err the warnings, or the message (file, key, value and range)
function Settings:load(file, overrides) end
---The same as load, from a string, without loading.
---@param text string
---@param name string what messages call it
---@param overrides? table<string, any>
---@return true|nil ok
---@return string[]|string warnings_or_err
function Settings:parse(text, name, overrides) end
---Prints every setting with its unit and origin and returns the text.
---@return string
function Settings:view() end

---The seed's logger (batlab.Logger, batlab.logger).
---@class batlab.Logger
---@field dir string where relative file names go
---@field echo boolean print test events
local Logger = {}
---Appends line and a newline to file and closes it.
---@param line any
---@param file string
---@return true|nil ok
---@return string? err
function Logger:log(line, file) end
---@param playlist string
---@param cell? string
---@return string path <dir>/batlab-log_<playlist>.csv (or _<cell>.csv), made safe as a file name
function Logger:logfile(playlist, cell) end

---What ch:test_info() returns about the latest test of a channel.
---@class batlab.TestInfo
---@field name string
---@field test_type "cycle"|"discharge"
---@field state string
---@field cycle integer
---@field runtime number
---@field testing boolean
---@field status string the task's
---@field ok boolean? once ended
---@field message string?
---@field verdict "pass"|"fail"|"error"|"incomplete"|nil
---@field logfile string?
---@field events string[]? the latest messages
