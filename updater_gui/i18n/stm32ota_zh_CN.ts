<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN" sourcelanguage="en">
<context>
    <name>Batch</name>
    <message>
        <source>Port</source>
        <translation>端口</translation>
    </message>
    <message>
        <source>Device id</source>
        <translation>设备 ID</translation>
    </message>
    <message>
        <source>Phase</source>
        <translation>阶段</translation>
    </message>
    <message>
        <source>Progress</source>
        <translation>进度</translation>
    </message>
    <message>
        <source>Result</source>
        <translation>结果</translation>
    </message>
</context>
<context>
    <name>BatchView</name>
    <message>
        <source>Serial ports (tick to include):</source>
        <translation>串口（勾选以加入）：</translation>
    </message>
    <message>
        <source>Emulated boards:</source>
        <translation>模拟板数量：</translation>
    </message>
    <message>
        <source>Loop: wait for the next board on each port</source>
        <translation>循环：每个端口等待下一块板</translation>
    </message>
    <message>
        <source>Flash every board that appears</source>
        <translation>烧录每块新接入的板</translation>
    </message>
    <message>
        <source>Flash all</source>
        <translation>全部烧录</translation>
    </message>
    <message>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <source>Save CSV…</source>
        <translation>保存 CSV…</translation>
    </message>
    <message>
        <source>Tick the ports to flash</source>
        <translation>勾选要烧录的端口</translation>
    </message>
    <message>
        <source>Open a firmware file first (in the Firmware panel).</source>
        <translation>请先打开固件文件（在“固件”面板）。</translation>
    </message>
    <message>
        <source>Tick at least one port, or add emulated boards.</source>
        <translation>请至少勾选一个端口，或添加模拟板。</translation>
    </message>
    <message>
        <source>emulated</source>
        <translation>模拟</translation>
    </message>
    <message>
        <source>{port} (emulated)</source>
        <translation>{port}（模拟）</translation>
    </message>
    <message>
        <source>ok, {version} in {seconds:.1f} s</source>
        <translation>成功，{version}，用时 {seconds:.1f} 秒</translation>
    </message>
    <message>
        <source>running</source>
        <translation>运行中</translation>
    </message>
    <message>
        <source>idle</source>
        <translation>空闲</translation>
    </message>
    <message>
        <source>{ok} flashed, {failed} failed, {boards} boards on {ports} ports ({state})</source>
        <translation>成功 {ok}，失败 {failed}，共 {boards} 块板，{ports} 个端口（{state}）</translation>
    </message>
    <message>
        <source>Save report</source>
        <translation>保存报告</translation>
    </message>
</context>
<context>
    <name>Errors</name>
    <message>
        <source>Permission denied opening {url}.</source>
        <translation>打开 {url} 被拒绝（没有权限）。</translation>
    </message>
    <message>
        <source>{url} is in use by another program.</source>
        <translation>{url} 正被其他程序占用。</translation>
    </message>
    <message>
        <source>There is no port {url}.</source>
        <translation>没有端口 {url}。</translation>
    </message>
    <message>
        <source>{url} refused the connection.</source>
        <translation>{url} 拒绝了连接。</translation>
    </message>
    <message>
        <source>{url} failed: the device was unplugged or hung up the line.</source>
        <translation>{url} 出错：设备已拔出或线路已断开。</translation>
    </message>
    <message>
        <source>{url} stopped answering: the device was unplugged.</source>
        <translation>{url} 不再应答：设备已拔出。</translation>
    </message>
    <message>
        <source>The connection to {url} was closed by the other end.</source>
        <translation>与 {url} 的连接被对方关闭。</translation>
    </message>
    <message>
        <source>{url} is not a serial port ({what}).</source>
        <translation>{url} 不是串口（{what}）。</translation>
    </message>
    <message>
        <source>The device did not answer ({what}): nothing came back.</source>
        <translation>设备没有应答（{what}）：未收到任何数据。</translation>
    </message>
    <message>
        <source>The device did not answer ({what}): {n} bytes came back that are not stm32ota frames.</source>
        <translation>设备没有应答（{what}）：收到 {n} 字节，但不是 stm32ota 帧。</translation>
    </message>
    <message>
        <source>The device did not answer ({what}): {n} answers arrived damaged.</source>
        <translation>设备没有应答（{what}）：{n} 个应答已损坏。</translation>
    </message>
    <message>
        <source>The device is busy (swapping or erasing) and did not answer ({what}).</source>
        <translation>设备正忙（交换分区或擦除中），没有应答（{what}）。</translation>
    </message>
    <message>
        <source>add your user to the &apos;dialout&apos; group (sudo usermod -aG dialout $USER), then log in again</source>
        <translation>请把当前用户加入 dialout 组（sudo usermod -aG dialout $USER），然后重新登录</translation>
    </message>
    <message>
        <source>close the other program using the port (terminal, serial monitor, ModemManager)</source>
        <translation>请关闭占用该端口的其他程序（终端、串口监视器、ModemManager）</translation>
    </message>
    <message>
        <source>check the cable and the port name</source>
        <translation>请检查数据线和端口名称</translation>
    </message>
    <message>
        <source>is the emulator or the serial server running?</source>
        <translation>模拟器或串口服务器是否在运行？</translation>
    </message>
    <message>
        <source>reconnect the cable and try again</source>
        <translation>请重新连接数据线后再试</translation>
    </message>
    <message>
        <source>check the port, the cable, the baud rate, and that the device is in its bootloader</source>
        <translation>请检查端口、数据线、波特率，并确认设备处于引导程序中</translation>
    </message>
    <message>
        <source>check the baud rate; the port may not be an stm32ota bootloader</source>
        <translation>请检查波特率；该端口上可能不是 stm32ota 引导程序</translation>
    </message>
    <message>
        <source>lower the baud rate or check the cable</source>
        <translation>请降低波特率或检查数据线</translation>
    </message>
    <message>
        <source>it may be swapping slots or erasing: wait until it is done and try again</source>
        <translation>设备可能正在交换分区或擦除：请等待完成后再试</translation>
    </message>
    <message>
        <source>The device has no previous image to roll back to.</source>
        <translation>设备上没有可回滚的旧固件。</translation>
    </message>
    <message>
        <source>The running image is not under test: there is nothing to confirm.</source>
        <translation>正在运行的固件不在试运行状态：无需确认。</translation>
    </message>
    <message>
        <source>The device does not allow that now.</source>
        <translation>设备当前不允许此操作。</translation>
    </message>
    <message>
        <source>The device is busy; try again in a moment.</source>
        <translation>设备正忙，请稍后再试。</translation>
    </message>
    <message>
        <source>The device refused the image: bad signature.</source>
        <translation>设备拒绝了固件：签名无效。</translation>
    </message>
    <message>
        <source>The device refused the image: it does not trust the signing key.</source>
        <translation>设备拒绝了固件：不信任该签名密钥。</translation>
    </message>
    <message>
        <source>The device refused the image: it is built for another chip.</source>
        <translation>设备拒绝了固件：它是为其他芯片构建的。</translation>
    </message>
    <message>
        <source>The device refused the image: its security counter is too low.</source>
        <translation>设备拒绝了固件：安全计数器过低。</translation>
    </message>
    <message>
        <source>The device refused the image: its digest does not match.</source>
        <translation>设备拒绝了固件：摘要不匹配。</translation>
    </message>
    <message>
        <source>The device refused the image: it does not fit the slot.</source>
        <translation>设备拒绝了固件：固件超出分区大小。</translation>
    </message>
    <message>
        <source>There is no image in that slot.</source>
        <translation>该分区中没有固件。</translation>
    </message>
    <message>
        <source>The device could not erase its flash.</source>
        <translation>设备无法擦除闪存。</translation>
    </message>
    <message>
        <source>The device could not program its flash.</source>
        <translation>设备无法写入闪存。</translation>
    </message>
    <message>
        <source>The flash read back differs from what was sent.</source>
        <translation>闪存回读内容与发送内容不一致。</translation>
    </message>
    <message>
        <source>The device&apos;s flash is write-protected.</source>
        <translation>设备闪存处于写保护状态。</translation>
    </message>
    <message>
        <source>Cancelled.</source>
        <translation>已取消。</translation>
    </message>
</context>
<context>
    <name>FlashLayoutBar</name>
    <message>
        <source>no device</source>
        <translation>无设备</translation>
    </message>
    <message>
        <source>bootloader</source>
        <translation>引导程序</translation>
    </message>
    <message>
        <source>primary slot</source>
        <translation>主槽</translation>
    </message>
    <message>
        <source>secondary slot</source>
        <translation>副槽</translation>
    </message>
    <message>
        <source>scratch / free</source>
        <translation>暂存 / 空闲</translation>
    </message>
    <message>
        <source>boot</source>
        <translation>引导</translation>
    </message>
    <message>
        <source>primary</source>
        <translation>主槽</translation>
    </message>
    <message>
        <source>secondary</source>
        <translation>副槽</translation>
    </message>
    <message>
        <source>free</source>
        <translation>空闲</translation>
    </message>
</context>
<context>
    <name>Flow</name>
    <message>
        <source>reading the device information</source>
        <translation>正在读取设备信息</translation>
    </message>
    <message>
        <source>device information read</source>
        <translation>已读取设备信息</translation>
    </message>
    <message>
        <source>probing the device</source>
        <translation>正在探测设备</translation>
    </message>
    <message>
        <source>stm32ota bootloader</source>
        <translation>stm32ota 引导程序</translation>
    </message>
    <message>
        <source>classic IAP device (YMODEM)</source>
        <translation>传统 IAP 设备（YMODEM）</translation>
    </message>
    <message>
        <source>checking the image against the device</source>
        <translation>正在按设备检查固件</translation>
    </message>
    <message>
        <source>image {version} fits the download slot</source>
        <translation>固件 {version} 适用于下载分区</translation>
    </message>
    <message>
        <source>preparing the download slot (the device erases it)</source>
        <translation>正在准备下载分区（设备擦除中）</translation>
    </message>
    <message>
        <source>erased {n} bytes</source>
        <translation>已擦除 {n} 字节</translation>
    </message>
    <message>
        <source>download slot ready</source>
        <translation>下载分区已就绪</translation>
    </message>
    <message>
        <source>sending {n} bytes at {baud} baud</source>
        <translation>正在以 {baud} 波特发送 {n} 字节</translation>
    </message>
    <message>
        <source>sent {n} bytes</source>
        <translation>已发送 {n} 字节</translation>
    </message>
    <message>
        <source>the device checks the image</source>
        <translation>设备正在校验固件</translation>
    </message>
    <message>
        <source>the device checked the image: digest, signature, chip and security counter</source>
        <translation>设备已校验固件：摘要、签名、芯片和安全计数器</translation>
    </message>
    <message>
        <source>marking the image for a test boot</source>
        <translation>正在将固件标记为试运行启动</translation>
    </message>
    <message>
        <source>marking the image for a permanent boot</source>
        <translation>正在将固件标记为永久启动</translation>
    </message>
    <message>
        <source>marked for a test boot</source>
        <translation>已标记为试运行启动</translation>
    </message>
    <message>
        <source>marked for a permanent boot</source>
        <translation>已标记为永久启动</translation>
    </message>
    <message>
        <source>restarting the device (the bootloader swaps the slots)</source>
        <translation>正在重启设备（引导程序交换分区）</translation>
    </message>
    <message>
        <source>the device is restarting; waiting for it to answer</source>
        <translation>设备正在重启，等待其应答</translation>
    </message>
    <message>
        <source>the device is restarting</source>
        <translation>设备正在重启</translation>
    </message>
    <message>
        <source>confirming the new image</source>
        <translation>正在确认新固件</translation>
    </message>
    <message>
        <source>new image confirmed</source>
        <translation>新固件已确认</translation>
    </message>
    <message>
        <source>switching to {baud} baud</source>
        <translation>正在切换到 {baud} 波特</translation>
    </message>
    <message>
        <source>line rate now {baud} baud</source>
        <translation>线路速率现为 {baud} 波特</translation>
    </message>
    <message>
        <source>opening {url} at {baud} baud</source>
        <translation>正在以 {baud} 波特打开 {url}</translation>
    </message>
    <message>
        <source>starting the emulated STM32</source>
        <translation>正在启动模拟 STM32</translation>
    </message>
    <message>
        <source>update complete</source>
        <translation>更新完成</translation>
    </message>
    <message>
        <source>choosing “Download image” in the IAP menu and sending with YMODEM</source>
        <translation>在 IAP 菜单中选择“下载固件”，并用 YMODEM 发送</translation>
    </message>
    <message>
        <source>the device keeps running its old image until it restarts</source>
        <translation>设备在重启前继续运行旧固件</translation>
    </message>
    <message>
        <source>the device came back without the new image</source>
        <translation>设备重启后没有运行新固件</translation>
    </message>
    <message>
        <source>restarting the device so that its bootloader brings back the previous image</source>
        <translation>正在重启设备，由引导程序恢复之前的镜像</translation>
    </message>
    <message>
        <source>the new image reported an error during its test boot: {error}</source>
        <translation>新镜像在试运行启动时报告错误：{error}</translation>
    </message>
    <message>
        <source>image installed; left to do: {left}</source>
        <translation>固件已安装；尚需：{left}</translation>
    </message>
    <message>
        <source>cancelled: the device keeps what it received; Flash resumes there</source>
        <translation>已取消：设备保留已接收的数据，再次烧录将从断点继续</translation>
    </message>
    <message>
        <source>the new image is marked to boot</source>
        <translation>新固件已标记为启动</translation>
    </message>
    <message>
        <source>waiting for the next board</source>
        <translation>等待下一块板</translation>
    </message>
    <message>
        <source>runs {version} ({state})</source>
        <translation>运行 {version}（{state}）</translation>
    </message>
</context>
<context>
    <name>Gateway</name>
    <message>
        <source>Port</source>
        <translation>端口</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>Runs</source>
        <translation>运行版本</translation>
    </message>
    <message>
        <source>State</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Job</source>
        <translation>任务</translation>
    </message>
    <message>
        <source>Phase</source>
        <translation>阶段</translation>
    </message>
    <message>
        <source>Progress</source>
        <translation>进度</translation>
    </message>
    <message>
        <source>Message</source>
        <translation>消息</translation>
    </message>
    <message>
        <source>#{action} → {version}</source>
        <translation>#{action} → {version}</translation>
    </message>
    <message>
        <source>starting</source>
        <translation>启动中</translation>
    </message>
    <message>
        <source>no device</source>
        <translation>无设备</translation>
    </message>
    <message>
        <source>idle</source>
        <translation>空闲</translation>
    </message>
    <message>
        <source>downloading</source>
        <translation>下载中</translation>
    </message>
    <message>
        <source>updating</source>
        <translation>更新中</translation>
    </message>
    <message>
        <source>error</source>
        <translation>错误</translation>
    </message>
    <message>
        <source>updated to {version}</source>
        <translation>已更新到 {version}</translation>
    </message>
    <message>
        <source>cancelled by the server</source>
        <translation>已被服务器取消</translation>
    </message>
    <message>
        <source>downloaded, waiting for the update to be allowed</source>
        <translation>已下载，等待允许更新</translation>
    </message>
    <message>
        <source>device gone: {why}</source>
        <translation>设备已断开：{why}</translation>
    </message>
</context>
<context>
    <name>GatewayTab</name>
    <message>
        <source>Server URL:</source>
        <translation>服务器地址：</translation>
    </message>
    <message>
        <source>https://ota.example.com</source>
        <translation>https://ota.example.com</translation>
    </message>
    <message>
        <source>Tenant:</source>
        <translation>租户：</translation>
    </message>
    <message>
        <source>Gateway token:</source>
        <translation>网关令牌：</translation>
    </message>
    <message>
        <source>from the server&apos;s admin (not saved)</source>
        <translation>由服务器管理员提供（不保存）</translation>
    </message>
    <message>
        <source>Trusted key:</source>
        <translation>信任的公钥：</translation>
    </message>
    <message>
        <source>public key .pem, or a folder of them</source>
        <translation>公钥 .pem 文件，或存放公钥的文件夹</translation>
    </message>
    <message>
        <source>Browse…</source>
        <translation>浏览…</translation>
    </message>
    <message>
        <source>State folder:</source>
        <translation>状态文件夹：</translation>
    </message>
    <message>
        <source>Baud:</source>
        <translation>波特率：</translation>
    </message>
    <message>
        <source>More ports:</source>
        <translation>其他端口：</translation>
    </message>
    <message>
        <source>socket://host:4001, rfc2217://…</source>
        <translation>socket://主机:4001, rfc2217://…</translation>
    </message>
    <message>
        <source>Any pyserial URLs or device paths, comma-separated</source>
        <translation>任意 pyserial URL 或设备路径，用逗号分隔</translation>
    </message>
    <message>
        <source>Emulated boards:</source>
        <translation>模拟板数量：</translation>
    </message>
    <message>
        <source>Serial ports to serve (tick):</source>
        <translation>要服务的串口（勾选）：</translation>
    </message>
    <message>
        <source>Start gateway</source>
        <translation>启动网关</translation>
    </message>
    <message>
        <source>Stop gateway</source>
        <translation>停止网关</translation>
    </message>
    <message>
        <source>Running.</source>
        <translation>运行中。</translation>
    </message>
    <message>
        <source>Status: {url}/status</source>
        <translation>状态：{url}/status</translation>
    </message>
    <message>
        <source>Starting…</source>
        <translation>正在启动…</translation>
    </message>
    <message>
        <source>Stopping (a relay in progress is left resumable)…</source>
        <translation>正在停止（进行中的中继可稍后续传）…</translation>
    </message>
    <message>
        <source>Error: {text}</source>
        <translation>错误：{text}</translation>
    </message>
    <message>
        <source>Stopped.</source>
        <translation>已停止。</translation>
    </message>
    <message>
        <source>give the server&apos;s URL</source>
        <translation>请填写服务器地址</translation>
    </message>
    <message>
        <source>for example https://ota.example.com</source>
        <translation>例如 https://ota.example.com</translation>
    </message>
    <message>
        <source>no serial ports to serve</source>
        <translation>没有要服务的串口</translation>
    </message>
    <message>
        <source>tick a port, type a URL, or add emulated boards</source>
        <translation>请勾选端口、输入 URL，或添加模拟板</translation>
    </message>
    <message>
        <source>Trusted public key</source>
        <translation>信任的公钥</translation>
    </message>
    <message>
        <source>Public keys (*.pem);;All files (*)</source>
        <translation>公钥 (*.pem);;所有文件 (*)</translation>
    </message>
</context>
<context>
    <name>IapTerminal</name>
    <message>
        <source>Keys to send (e.g. 1 for Download, 3 to run the application)</source>
        <translation>要发送的按键（如 1 下载，3 运行应用程序）</translation>
    </message>
    <message>
        <source>Send keys</source>
        <translation>发送按键</translation>
    </message>
    <message>
        <source>Send file (YMODEM)…</source>
        <translation>发送文件（YMODEM）…</translation>
    </message>
    <message>
        <source>Connect a classic IAP device to use its menu here.</source>
        <translation>连接经典 IAP 设备后可在此使用其菜单。</translation>
    </message>
    <message>
        <source>Connected to {url}</source>
        <translation>已连接到 {url}</translation>
    </message>
    <message>
        <source>Terminal stopped: {text}</source>
        <translation>终端已停止：{text}</translation>
    </message>
    <message>
        <source>Send file (YMODEM)</source>
        <translation>发送文件（YMODEM）</translation>
    </message>
    <message>
        <source>Cannot read {name}: {why}</source>
        <translation>无法读取 {name}：{why}</translation>
    </message>
    <message>
        <source>Sending {name} with YMODEM…</source>
        <translation>正在用 YMODEM 发送 {name}…</translation>
    </message>
    <message>
        <source>Sent {size} bytes with YMODEM at {time}.</source>
        <translation>已用 YMODEM 发送 {size} 字节（{time}）。</translation>
    </message>
    <message>
        <source>YMODEM send failed: {text}</source>
        <translation>YMODEM 发送失败：{text}</translation>
    </message>
</context>
<context>
    <name>LogConsole</name>
    <message>
        <source>Errors</source>
        <translation>错误</translation>
    </message>
    <message>
        <source>Warnings</source>
        <translation>警告</translation>
    </message>
    <message>
        <source>Info</source>
        <translation>信息</translation>
    </message>
    <message>
        <source>Debug</source>
        <translation>调试</translation>
    </message>
    <message>
        <source>Level:</source>
        <translation>级别：</translation>
    </message>
    <message>
        <source>Filter log text…</source>
        <translation>过滤日志文本…</translation>
    </message>
    <message>
        <source>Pause scrolling</source>
        <translation>暂停滚动</translation>
    </message>
    <message>
        <source>Clear</source>
        <translation>清空</translation>
    </message>
    <message>
        <source>Save…</source>
        <translation>保存…</translation>
    </message>
    <message>
        <source>{n} lines</source>
        <translation>{n} 行</translation>
    </message>
    <message>
        <source>Save log</source>
        <translation>保存日志</translation>
    </message>
    <message>
        <source>Log files (*.log *.txt)</source>
        <translation>日志文件 (*.log *.txt)</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>stm32ota updater</source>
        <translation>stm32ota 升级工具</translation>
    </message>
    <message>
        <source>Connection</source>
        <translation>连接</translation>
    </message>
    <message>
        <source>Port:</source>
        <translation>端口：</translation>
    </message>
    <message>
        <source>or URL:</source>
        <translation>或 URL：</translation>
    </message>
    <message>
        <source>socket://host:port, rfc2217://…</source>
        <translation>socket://主机:端口, rfc2217://…</translation>
    </message>
    <message>
        <source>Baud:</source>
        <translation>波特率：</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>Type:</source>
        <translation>类型：</translation>
    </message>
    <message>
        <source>Chip:</source>
        <translation>芯片：</translation>
    </message>
    <message>
        <source>Unique id:</source>
        <translation>唯一 ID：</translation>
    </message>
    <message>
        <source>Bootloader:</source>
        <translation>引导程序：</translation>
    </message>
    <message>
        <source>Firmware</source>
        <translation>固件</translation>
    </message>
    <message>
        <source>Open…</source>
        <translation>打开…</translation>
    </message>
    <message>
        <source>Recent</source>
        <translation>最近</translation>
    </message>
    <message>
        <source>File:</source>
        <translation>文件：</translation>
    </message>
    <message>
        <source>Contents:</source>
        <translation>内容：</translation>
    </message>
    <message>
        <source>SHA-256:</source>
        <translation>SHA-256：</translation>
    </message>
    <message>
        <source>Check:</source>
        <translation>检查：</translation>
    </message>
    <message>
        <source>Allow downgrade</source>
        <translation>允许降级</translation>
    </message>
    <message>
        <source>Reinstall same version</source>
        <translation>重装相同版本</translation>
    </message>
    <message>
        <source>Activate and reboot</source>
        <translation>激活并重启</translation>
    </message>
    <message>
        <source>Confirm</source>
        <translation>确认</translation>
    </message>
    <message>
        <source>Roll back</source>
        <translation>回滚</translation>
    </message>
    <message>
        <source>Reset</source>
        <translation>复位</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Device log</source>
        <translation>设备日志</translation>
    </message>
    <message>
        <source>IAP terminal</source>
        <translation>IAP 终端</translation>
    </message>
    <message>
        <source>Batch</source>
        <translation>批量</translation>
    </message>
    <message>
        <source>Gateway</source>
        <translation>网关</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <source>&amp;Open firmware…</source>
        <translation>打开固件(&amp;O)…</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>退出(&amp;Q)</translation>
    </message>
    <message>
        <source>&amp;Language</source>
        <translation>语言(&amp;L)</translation>
    </message>
    <message>
        <source>Emulated STM32 (built in)</source>
        <translation>模拟 STM32（内置）</translation>
    </message>
    <message>
        <source>wait for the current operation to finish, or cancel it</source>
        <translation>请等待当前操作完成，或取消它</translation>
    </message>
    <message>
        <source>Cancelled ({done:.0f} %). Press Resume to continue where it stopped.</source>
        <translation>已取消（{done:.0f} %）。按“继续烧录”从中断处继续。</translation>
    </message>
    <message>
        <source>Cancelled.</source>
        <translation>已取消。</translation>
    </message>
    <message>
        <source>Error: {text}</source>
        <translation>错误：{text}</translation>
    </message>
    <message>
        <source>{phase}: {done} of {total}, {rate}, {eta} left</source>
        <translation>{phase}：{done} / {total}，{rate}，剩余 {eta}</translation>
    </message>
    <message>
        <source>Connected to {url}</source>
        <translation>已连接到 {url}</translation>
    </message>
    <message>
        <source>Disconnected</source>
        <translation>已断开</translation>
    </message>
    <message>
        <source>Disconnect</source>
        <translation>断开</translation>
    </message>
    <message>
        <source>Connect</source>
        <translation>连接</translation>
    </message>
    <message>
        <source>classic AN4657 IAP bootloader (YMODEM)</source>
        <translation>经典 AN4657 IAP 引导程序（YMODEM）</translation>
    </message>
    <message>
        <source>not reported by an IAP menu</source>
        <translation>IAP 菜单不提供</translation>
    </message>
    <message>
        <source>stm32ota bootloader, protocol {major}.{minor}</source>
        <translation>stm32ota 引导程序，协议 {major}.{minor}</translation>
    </message>
    <message>
        <source>0x{chip:03X}, board {board}, {flash} flash</source>
        <translation>0x{chip:03X}，板型 {board}，闪存 {flash}</translation>
    </message>
    <message>
        <source>Open firmware</source>
        <translation>打开固件</translation>
    </message>
    <message>
        <source>Firmware ({patterns});;All files (*)</source>
        <translation>固件 ({patterns});;所有文件 (*)</translation>
    </message>
    <message>
        <source>drop a .bin, .hex, .srec or .elf here, or Open…</source>
        <translation>将 .bin、.hex、.srec 或 .elf 拖到此处，或点击“打开…”</translation>
    </message>
    <message>
        <source>unreadable</source>
        <translation>无法读取</translation>
    </message>
    <message>
        <source>, chip 0x{chip:03X} board {board}</source>
        <translation>，芯片 0x{chip:03X} 板型 {board}</translation>
    </message>
    <message>
        <source>, no chip tag</source>
        <translation>，无芯片标签</translation>
    </message>
    <message>
        <source>none</source>
        <translation>无</translation>
    </message>
    <message>
        <source>signed image {version} ({fmt}, {size}), security counter {counter}, {sig} signature by key {key}{tag}</source>
        <translation>签名镜像 {version}（{fmt}，{size}），安全计数器 {counter}，{sig} 签名，密钥 {key}{tag}</translation>
    </message>
    <message>
        <source>no</source>
        <translation>无</translation>
    </message>
    <message>
        <source>raw application ({fmt}, {size}{where}), not signed</source>
        <translation>原始应用程序（{fmt}，{size}{where}），未签名</translation>
    </message>
    <message>
        <source>connect a device to check the file against it</source>
        <translation>连接设备后将针对该设备检查此文件</translation>
    </message>
    <message>
        <source>The device already runs this version; tick “Reinstall same version” to flash it again.</source>
        <translation>设备已在运行此版本；如需再次烧录，请勾选“重装相同版本”。</translation>
    </message>
    <message>
        <source>Ready to flash: {reason}</source>
        <translation>可以烧录：{reason}</translation>
    </message>
    <message>
        <source>Refused ({slug}): {reason}</source>
        <translation>已拒绝（{slug}）：{reason}</translation>
    </message>
    <message>
        <source>Fix: {hint}</source>
        <translation>解决方法：{hint}</translation>
    </message>
    <message>
        <source>an operation is running</source>
        <translation>有操作正在进行</translation>
    </message>
    <message>
        <source>connect a device first</source>
        <translation>请先连接设备</translation>
    </message>
    <message>
        <source>open a firmware file first</source>
        <translation>请先打开固件文件</translation>
    </message>
    <message>
        <source>the file was not checked</source>
        <translation>文件尚未检查</translation>
    </message>
    <message>
        <source>Resume flash</source>
        <translation>继续烧录</translation>
    </message>
    <message>
        <source>Flash</source>
        <translation>烧录</translation>
    </message>
    <message>
        <source>cannot flash: {reason}</source>
        <translation>无法烧录：{reason}</translation>
    </message>
    <message>
        <source>, resumed at {offset}</source>
        <translation>，从 {offset} 处继续</translation>
    </message>
    <message>
        <source>Done: {size} in {seconds:.1f} s at {baud} baud{resumed}.</source>
        <translation>完成：{size}，用时 {seconds:.1f} 秒，波特率 {baud}{resumed}。</translation>
    </message>
    <message>
        <source>Rebooted into the new image: confirm it when it works.</source>
        <translation>已重启进入新镜像：确认其正常后请点击“确认”。</translation>
    </message>
    <message>
        <source>The running image is confirmed.</source>
        <translation>当前运行的镜像已确认。</translation>
    </message>
    <message>
        <source>Rolled back to the previous image.</source>
        <translation>已回滚到上一个镜像。</translation>
    </message>
    <message>
        <source>The device restarted.</source>
        <translation>设备已重启。</translation>
    </message>
</context>
<context>
    <name>Phase</name>
    <message>
        <source>connect</source>
        <translation>连接</translation>
    </message>
    <message>
        <source>probe</source>
        <translation>探测</translation>
    </message>
    <message>
        <source>read back</source>
        <translation>回读</translation>
    </message>
    <message>
        <source>device work</source>
        <translation>设备操作</translation>
    </message>
    <message>
        <source>read device</source>
        <translation>读取设备</translation>
    </message>
    <message>
        <source>check image</source>
        <translation>检查镜像</translation>
    </message>
    <message>
        <source>erase</source>
        <translation>擦除</translation>
    </message>
    <message>
        <source>transfer</source>
        <translation>传输</translation>
    </message>
    <message>
        <source>verify</source>
        <translation>校验</translation>
    </message>
    <message>
        <source>activate</source>
        <translation>激活</translation>
    </message>
    <message>
        <source>baud switch</source>
        <translation>切换波特率</translation>
    </message>
    <message>
        <source>reboot</source>
        <translation>重启</translation>
    </message>
    <message>
        <source>confirm</source>
        <translation>确认</translation>
    </message>
    <message>
        <source>done</source>
        <translation>完成</translation>
    </message>
    <message>
        <source>cancelled</source>
        <translation>已取消</translation>
    </message>
    <message>
        <source>error</source>
        <translation>错误</translation>
    </message>
    <message>
        <source>waiting</source>
        <translation>等待中</translation>
    </message>
    <message>
        <source>roll back</source>
        <translation>回滚</translation>
    </message>
    <message>
        <source>boot</source>
        <translation>启动</translation>
    </message>
    <message>
        <source>download</source>
        <translation>下载</translation>
    </message>
</context>
<context>
    <name>Reasons</name>
    <message>
        <source>the file is not an MCUboot image (no image header)</source>
        <translation>该文件不是 MCUboot 固件（没有固件头）</translation>
    </message>
    <message>
        <source>the image is not signed, or a required part is missing</source>
        <translation>固件未签名，或缺少必需的部分</translation>
    </message>
    <message>
        <source>the image is signed by a key this device does not trust</source>
        <translation>固件的签名密钥不受此设备信任</translation>
    </message>
    <message>
        <source>the signature does not match: the file was changed after signing</source>
        <translation>签名不匹配：文件在签名后被修改过</translation>
    </message>
    <message>
        <source>the image digest does not match: the file is damaged or altered</source>
        <translation>固件摘要不匹配：文件已损坏或被篡改</translation>
    </message>
    <message>
        <source>the signature type is not one this device verifies</source>
        <translation>此设备不支持该签名类型</translation>
    </message>
    <message>
        <source>the image is built for another chip</source>
        <translation>该固件是为其他芯片构建的</translation>
    </message>
    <message>
        <source>the image is built for another board</source>
        <translation>该固件是为其他电路板构建的</translation>
    </message>
    <message>
        <source>the image&apos;s security counter is below the device&apos;s: it would be refused</source>
        <translation>固件的安全计数器低于设备的：设备会拒绝它</translation>
    </message>
    <message>
        <source>the image does not fit the device&apos;s slot</source>
        <translation>固件超出设备分区大小</translation>
    </message>
    <message>
        <source>the file is cut short</source>
        <translation>文件不完整（被截断）</translation>
    </message>
    <message>
        <source>the image&apos;s metadata (TLV area) is malformed</source>
        <translation>固件元数据（TLV 区）格式错误</translation>
    </message>
    <message>
        <source>the image uses a feature this device does not support</source>
        <translation>固件使用了此设备不支持的功能</translation>
    </message>
    <message>
        <source>the image is marked non-bootable</source>
        <translation>固件被标记为不可启动</translation>
    </message>
    <message>
        <source>the file does not look like an STM32 application</source>
        <translation>该文件看起来不是 STM32 应用程序</translation>
    </message>
    <message>
        <source>the image is built for another flash address</source>
        <translation>该固件是为其他闪存地址构建的</translation>
    </message>
    <message>
        <source>the image is padded for another slot size</source>
        <translation>该固件按其他分区大小填充</translation>
    </message>
    <message>
        <source>the file&apos;s sections overlap</source>
        <translation>文件中的段相互重叠</translation>
    </message>
    <message>
        <source>the file&apos;s sections are too far apart for one image</source>
        <translation>文件中的段相距太远，无法组成一个固件</translation>
    </message>
    <message>
        <source>this is a downgrade: the image is {new}, the device runs {old}</source>
        <translation>这是降级：固件版本为 {new}，设备运行 {old}</translation>
    </message>
    <message>
        <source>the device already runs version {old}</source>
        <translation>设备已在运行版本 {old}</translation>
    </message>
    <message>
        <source>{name} cannot be used: {problem}</source>
        <translation>无法使用 {name}：{problem}</translation>
    </message>
    <message>
        <source>a raw application for the IAP area ({size} bytes)</source>
        <translation>用于 IAP 区的原始应用程序（{size} 字节）</translation>
    </message>
    <message>
        <source>signature checked</source>
        <translation>签名已验证</translation>
    </message>
    <message>
        <source>the device checks the signature</source>
        <translation>由设备验证签名</translation>
    </message>
    <message>
        <source>image {version} over {running} fits slot 1; {sig}</source>
        <translation>固件 {version}（当前 {running}）适用于分区 1；{sig}</translation>
    </message>
    <message>
        <source>image {version} fits slot 1; {sig}</source>
        <translation>固件 {version} 适用于分区 1；{sig}</translation>
    </message>
    <message>
        <source>tick “Allow downgrade” to install it anyway</source>
        <translation>如仍要安装，请勾选“允许降级”</translation>
    </message>
    <message>
        <source>tick “Reinstall same version” to flash it again</source>
        <translation>如要再次烧录，请勾选“重新安装相同版本”</translation>
    </message>
    <message>
        <source>see what the file holds: {command}</source>
        <translation>查看文件内容：{command}</translation>
    </message>
    <message>
        <source>sign the application again with a key the device trusts: {command}</source>
        <translation>请用设备信任的密钥重新签名应用程序：{command}</translation>
    </message>
</context>
<context>
    <name>SlotState</name>
    <message>
        <source>empty</source>
        <translation>空</translation>
    </message>
    <message>
        <source>inactive</source>
        <translation>未激活</translation>
    </message>
    <message>
        <source>pending test</source>
        <translation>待测试</translation>
    </message>
    <message>
        <source>pending permanent</source>
        <translation>待永久安装</translation>
    </message>
    <message>
        <source>active (test)</source>
        <translation>运行中（测试）</translation>
    </message>
    <message>
        <source>confirmed</source>
        <translation>已确认</translation>
    </message>
</context>
<context>
    <name>SlotTable</name>
    <message>
        <source>Slot</source>
        <translation>槽位</translation>
    </message>
    <message>
        <source>State</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Version</source>
        <translation>版本</translation>
    </message>
    <message>
        <source>Size</source>
        <translation>大小</translation>
    </message>
    <message>
        <source>Security counter</source>
        <translation>安全计数器</translation>
    </message>
    <message>
        <source>Digest</source>
        <translation>摘要</translation>
    </message>
    <message>
        <source>primary</source>
        <translation>主槽</translation>
    </message>
    <message>
        <source>secondary</source>
        <translation>副槽</translation>
    </message>
</context>
</TS>
